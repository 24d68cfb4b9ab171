//! The audience gate of a CLI command: the audience engine is built from the store on
//! the first question only, so a template without an audience costs no index build.

use flywheel_promotions::coupons::{AudienceGate, GateFuture};
use flywheel_store::Store;
use flywheel_workers::adapters::AudienceMembership;

/// The audience gate of a CLI command: the audience engine is built from the store on the
/// first question only, so a template without an audience costs no index build.
pub struct AudienceOnDemand {
    /// The store the engine is built from.
    pub store: Store,
    /// The `[audience]` settings.
    pub config: flywheel_audience::config::AudienceConfig,
    /// The engine, once built.
    pub built: tokio::sync::OnceCell<AudienceMembership>,
}

impl AudienceOnDemand {
    /// A gate over `store` with the `[audience]` settings `config`.
    pub fn new(store: Store, config: flywheel_audience::config::AudienceConfig) -> AudienceOnDemand {
        AudienceOnDemand {
            store,
            config,
            built: tokio::sync::OnceCell::new(),
        }
    }
}

impl AudienceGate for AudienceOnDemand {
    fn is_member<'a>(&'a self, expression: &'a str, user_id: &'a str) -> GateFuture<'a> {
        Box::pin(async move {
            let gate = self
                .built
                .get_or_try_init(|| async {
                    let audience = crate::serve::open_audience(&self.store, self.config.clone())
                        .await
                        .map_err(|e| {
                            flywheel_promotions::Error::invalid(
                                flywheel_core::ErrorCode::AudienceUnavailable,
                                format!("{e:#}"),
                            )
                        })?;
                    Ok::<_, flywheel_promotions::Error>(AudienceMembership {
                        store: self.store.clone(),
                        audience,
                    })
                })
                .await?;
            gate.is_member(expression, user_id).await
        })
    }
}
