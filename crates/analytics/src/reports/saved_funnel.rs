//! Saved funnels: a funnel's steps, window and breakdown kept under a name (table
//! `saved_funnels`), listed, shown, deleted and run again by name. A funnel is checked
//! as the funnel report checks it before it is saved, so a saved funnel always runs.

use flywheel_core::ErrorCode;
use flywheel_store::analytics::saved_funnels as stored;

pub use flywheel_store::analytics::saved_funnels::SavedFunnel;

use super::funnel::check_shape;
use super::{Error, Filter, Reports, Result};
use crate::columnar::FunnelReport;

/// The longest name of a saved funnel, in characters.
pub const MAX_FUNNEL_NAME: usize = 100;

impl Reports {
    /// Saves funnel `f` (its `created_at` is set to `now`). Refused: a blank name or one
    /// longer than [`MAX_FUNNEL_NAME`] (`invalid_funnel`), the funnel report's refusals of
    /// its steps and window, a name already saved (`name_taken`).
    pub async fn save_funnel(&self, mut f: SavedFunnel, now: i64) -> Result<SavedFunnel> {
        let name = f.name.trim();
        if name.is_empty() || name.chars().count() > MAX_FUNNEL_NAME {
            return Err(Error::refused(
                ErrorCode::InvalidFunnel,
                format!("a saved funnel needs a name of 1–{MAX_FUNNEL_NAME} characters"),
            ));
        }
        f.name = name.to_string();
        f.created_at = now;
        check_shape(&f.steps, f.window_ms)?;
        self.check_steps(&f.steps).await?;
        let row = f.clone();
        if !self.store.write_with(move |c| stored::insert(c, &row)).await? {
            return Err(Error::refused(
                ErrorCode::NameTaken,
                format!(
                    "a funnel named {:?} is already saved: delete it first or choose another name",
                    f.name
                ),
            ));
        }
        Ok(f)
    }

    /// Every saved funnel, by name.
    pub async fn saved_funnels(&self) -> Result<Vec<SavedFunnel>> {
        Ok(self.store.read_with(stored::list).await?)
    }

    /// The saved funnel `name`; refused `not_found` when there is none.
    pub async fn saved_funnel(&self, name: &str) -> Result<SavedFunnel> {
        let key = name.to_string();
        self.store
            .read_with(move |c| stored::get(c, &key))
            .await?
            .ok_or_else(|| Error::refused(ErrorCode::NotFound, format!("no saved funnel named {name:?}")))
    }

    /// Deletes the saved funnel `name`; refused `not_found` when there is none.
    pub async fn delete_saved_funnel(&self, name: &str) -> Result<()> {
        let key = name.to_string();
        if self.store.write_with(move |c| stored::delete(c, &key)).await? {
            Ok(())
        } else {
            Err(Error::refused(
                ErrorCode::NotFound,
                format!("no saved funnel named {name:?}"),
            ))
        }
    }

    /// Runs the saved funnel `name` over the filter's scope (the funnel report, with the
    /// saved steps, window and breakdown).
    pub async fn run_saved_funnel(&self, f: &Filter, name: &str) -> Result<FunnelReport> {
        let saved = self.saved_funnel(name).await?;
        self.funnel(f, &saved.steps, saved.window_ms, saved.breakdown.as_deref())
            .await
    }
}
