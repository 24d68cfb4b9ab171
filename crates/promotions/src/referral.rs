//! Referrals (裂變): invite codes, who invited whom, and rewards to both sides on the
//! invitee's first paid order — coupons (issued through [`CouponService`]) and/or points
//! (reported for the loyalty ledger). Anti-abuse: no self-referral, a daily cap per
//! inviter, referrals from a device or IP another of the inviter's referrals used are
//! flagged and held instead of rewarded, and rewards are clawed back when that first
//! order is refunded.

use std::sync::Arc;

use chrono::TimeZone;
use flywheel_core::Clock;
use flywheel_core::ErrorCode;
use flywheel_store::referrals::{self as q, ReferralRow, ReferralState};
use flywheel_store::Store;
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::coupons::CouponService;
use crate::{Error, Result};

/// What one side gets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Reward {
    /// A coupon of this template.
    #[serde(default)]
    pub coupon_template: Option<String>,
    /// Points, for the loyalty ledger.
    #[serde(default)]
    pub points: i64,
}

/// The program.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReferralProgram {
    /// The inviter's reward.
    #[serde(default)]
    pub inviter_reward: Reward,
    /// The invitee's reward.
    #[serde(default)]
    pub invitee_reward: Reward,
    /// Referrals one inviter may make per shop-local day ([SUGGESTED DEFAULT] 20).
    #[serde(default = "default_cap")]
    pub daily_cap: i64,
    /// Flagged referrals (same device or IP as another of the inviter's) are held, not rewarded.
    #[serde(default = "yes")]
    pub hold_flagged: bool,
}

fn default_cap() -> i64 {
    20
}

fn yes() -> bool {
    true
}

impl Default for ReferralProgram {
    fn default() -> Self {
        ReferralProgram {
            inviter_reward: Reward::default(),
            invitee_reward: Reward::default(),
            daily_cap: default_cap(),
            hold_flagged: true,
        }
    }
}

/// A referral as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Referral {
    /// The invited user.
    pub invitee: String,
    /// Who invited them.
    pub inviter: String,
    /// `pending` (no paid order yet), `rewarding` (claimed, rewards being issued),
    /// `rewarded`, `held` (flagged), `clawed_back`.
    pub state: ReferralState,
    /// Anti-abuse flags.
    pub flags: Vec<String>,
    /// The first paid order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    /// What was granted (coupon ids, points) or could not be.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rewards: Option<Value>,
}

impl From<ReferralRow> for Referral {
    fn from(r: ReferralRow) -> Self {
        Referral {
            invitee: r.invitee,
            inviter: r.inviter,
            state: r.state,
            flags: r
                .flags
                .split(',')
                .filter(|f| !f.is_empty())
                .map(str::to_owned)
                .collect(),
            order_id: r.order_id,
            rewards: r.rewards.and_then(|j| serde_json::from_str(&j).ok()),
        }
    }
}

fn conflict(code: ErrorCode, message: impl Into<String>) -> Error {
    Error::Conflict {
        code,
        message: message.into(),
    }
}

/// The referral program over the store and the coupon service.
#[derive(Clone)]
pub struct Referrals {
    store: Store,
    clock: Arc<dyn Clock>,
    coupons: CouponService,
}

const ACTOR: &str = "referral";

impl Referrals {
    /// The program over `store`, issuing coupons through `coupons`.
    pub fn new(store: Store, clock: Arc<dyn Clock>, coupons: CouponService) -> Referrals {
        Referrals {
            store,
            clock,
            coupons,
        }
    }

    fn now(&self) -> i64 {
        flywheel_core::time::to_millis(self.clock.now())
    }

    /// The program settings (defaults until set).
    pub async fn program(&self) -> Result<ReferralProgram> {
        match self.store.read_with(q::program).await? {
            Some(body) => serde_json::from_str(&body)
                .map_err(|e| Error::invalid(ErrorCode::InvalidProgram, e.to_string())),
            None => Ok(ReferralProgram::default()),
        }
    }

    /// Sets the program; coupon templates must exist.
    pub async fn set_program(&self, p: ReferralProgram) -> Result<ReferralProgram> {
        if p.daily_cap < 1 || p.inviter_reward.points < 0 || p.invitee_reward.points < 0 {
            return Err(Error::invalid(
                ErrorCode::InvalidProgram,
                "daily_cap ≥ 1 and points ≥ 0",
            ));
        }
        let known: Vec<String> = self
            .coupons
            .templates()
            .await?
            .into_iter()
            .map(|(t, _)| t.id)
            .collect();
        for t in [
            &p.inviter_reward.coupon_template,
            &p.invitee_reward.coupon_template,
        ]
        .into_iter()
        .flatten()
        {
            if !known.contains(t) {
                return Err(Error::invalid(
                    ErrorCode::InvalidProgram,
                    format!("no coupon template {t:?}"),
                ));
            }
        }
        let body = serde_json::to_string(&p)
            .map_err(|e| Error::invalid(ErrorCode::InvalidProgram, e.to_string()))?;
        let now = self.now();
        self.store
            .write_with(move |c| q::set_program(c, &body, now))
            .await?;
        Ok(p)
    }

    /// The invite code of `user`, made on first use (8 characters, no 0/O/1/I).
    pub async fn invite_code(&self, user: &str) -> Result<String> {
        if user.trim().is_empty() {
            return Err(Error::invalid(
                ErrorCode::InvalidUser,
                "an inviter needs a user id",
            ));
        }
        let (user, now) = (user.to_owned(), self.now());
        let code = self
            .store
            .write_with(move |c| {
                if let Some(code) = q::code_of(c, &user)? {
                    return Ok(code);
                }
                loop {
                    let code: String = {
                        let mut rng = rand::thread_rng();
                        (0..8)
                            .map(|_| char::from(b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ"[rng.gen_range(0..32)]))
                            .collect()
                    };
                    if q::insert_code(c, &user, &code, now)? {
                        return Ok(code);
                    }
                }
            })
            .await?;
        Ok(code)
    }

    /// Records that `invitee` came by `code`; refused for self-referral, an invitee
    /// already referred, or an inviter past today's cap. Flagged when the device or IP
    /// was seen on another of the inviter's referrals.
    pub async fn register(
        &self,
        code: &str,
        invitee: &str,
        device_id: Option<&str>,
        ip: Option<&str>,
    ) -> Result<Referral> {
        if invitee.trim().is_empty() {
            return Err(Error::invalid(
                ErrorCode::InvalidUser,
                "an invitee needs a user id",
            ));
        }
        let program = self.program().await?;
        let now = self.now();
        let tz = chrono_tz::Asia::Shanghai;
        let today = flywheel_core::time::from_millis(now)
            .with_timezone(&tz)
            .date_naive();
        let day_start = today
            .and_hms_opt(0, 0, 0)
            .and_then(|d| tz.from_local_datetime(&d).earliest())
            .map_or(now, |d| d.timestamp_millis());
        let (code, invitee) = (code.trim().to_uppercase(), invitee.to_owned());
        let (device, ip) = (device_id.map(str::to_owned), ip.map(str::to_owned));
        let out: std::result::Result<ReferralRow, (ErrorCode, String)> = self
            .store
            .write_with(move |c| {
                let Some(inviter) = q::inviter_of(c, &code)? else {
                    return Ok(Err((ErrorCode::NotFound, "invite code".into())));
                };
                if inviter == invitee {
                    return Ok(Err((ErrorCode::SelfReferral, "one cannot invite oneself".into())));
                }
                if q::referral(c, &invitee)?.is_some() {
                    return Ok(Err((
                        ErrorCode::AlreadyReferred,
                        format!("{invitee} was referred already"),
                    )));
                }
                if q::count_since(c, &inviter, day_start)? >= program.daily_cap {
                    return Ok(Err((
                        ErrorCode::DailyCap,
                        format!("{inviter} reached today's {} referrals", program.daily_cap),
                    )));
                }
                let (same_device, same_ip) =
                    q::seen_device_or_ip(c, &inviter, device.as_deref(), ip.as_deref())?;
                let flags: Vec<&str> = [(same_device, "same_device"), (same_ip, "same_ip")]
                    .into_iter()
                    .filter_map(|(f, n)| f.then_some(n))
                    .collect();
                let row = ReferralRow {
                    invitee: invitee.clone(),
                    inviter,
                    device_id: device,
                    ip,
                    flags: flags.join(","),
                    state: ReferralState::Pending,
                    order_id: None,
                    rewards: None,
                    created_at: now,
                };
                if !q::insert_referral(c, &row)? {
                    return Ok(Err((
                        ErrorCode::AlreadyReferred,
                        format!("{invitee} was referred already"),
                    )));
                }
                Ok(Ok(row))
            })
            .await?;
        match out {
            Ok(row) => Ok(row.into()),
            Err((ErrorCode::NotFound, what)) => Err(Error::NotFound(what)),
            Err((code, message)) => Err(conflict(code, message)),
        }
    }

    /// The invitee's first paid order: rewards both sides (once; the same order again
    /// answers the same; a later order earns nothing). A flagged referral is held.
    ///
    /// Safe to call again after a failure: the referral is claimed (`rewarding`) before any
    /// coupon is issued, each side's coupon is issued once under a key of its own, and a
    /// referral left `rewarding` by a failure finishes on the next call with the same
    /// order. A store failure is returned (the referral stays `rewarding`); a coupon the
    /// program cannot give (sold out, per-user limit) is recorded in the rewards.
    pub async fn first_paid_order(&self, invitee: &str, order_id: &str) -> Result<Referral> {
        // Most paying users were never referred: answer them from a read, no write.
        let pending = self.get(invitee).await?;
        if !matches!(pending.state, ReferralState::Pending | ReferralState::Rewarding)
            && pending.order_id.as_deref() == Some(order_id)
        {
            return Ok(pending);
        }
        let program = self.program().await?;
        let now = self.now();
        let (inv, order) = (invitee.to_owned(), order_id.to_owned());
        let hold = program.hold_flagged;
        // Claim the reward atomically first, so concurrent calls issue coupons once.
        let claimed: std::result::Result<(bool, ReferralRow), ErrorCode> = self
            .store
            .write_with(move |c| {
                let Some(r) = q::referral(c, &inv)? else {
                    return Ok(Err(ErrorCode::NotFound));
                };
                if r.state != ReferralState::Pending {
                    return Ok(if r.order_id.as_deref() == Some(order.as_str()) {
                        // A claim a failure interrupted is finished now.
                        Ok((r.state == ReferralState::Rewarding, r))
                    } else {
                        Err(ErrorCode::AlreadyRewarded)
                    });
                }
                let to = if hold && !r.flags.is_empty() {
                    ReferralState::Held
                } else {
                    ReferralState::Rewarding
                };
                q::transition(c, &inv, ReferralState::Pending, to, Some(&order), None, now)?;
                Ok(Ok((
                    to == ReferralState::Rewarding,
                    q::referral(c, &inv)?.unwrap_or(r),
                )))
            })
            .await?;
        let (grant, row) = match claimed {
            Ok(x) => x,
            Err(ErrorCode::NotFound) => return Err(Error::NotFound(format!("referral of {invitee:?}"))),
            Err(_) => {
                return Err(conflict(
                    ErrorCode::AlreadyRewarded,
                    "only the first paid order is rewarded",
                ))
            }
        };
        if !grant {
            return Ok(row.into());
        }
        let mut rewards = json!({});
        for (side, user, reward) in [
            ("inviter", row.inviter.as_str(), &program.inviter_reward),
            ("invitee", row.invitee.as_str(), &program.invitee_reward),
        ] {
            let key = format!("referral:{}:{side}", row.invitee);
            let coupon = match &reward.coupon_template {
                Some(t) => match self.coupons.issue_once(t, user, ACTOR, &key).await {
                    Ok(c) => json!(c.id),
                    Err(Error::Store(e)) => return Err(Error::Store(e)),
                    Err(e) => json!({"error": e.code()}),
                },
                None => Value::Null,
            };
            rewards[side] = json!({"user_id": user, "coupon": coupon, "points": reward.points});
        }
        let body = rewards.to_string();
        let (inv, order) = (invitee.to_owned(), order_id.to_owned());
        self.store
            .write_with(move |c| {
                q::transition(
                    c,
                    &inv,
                    ReferralState::Rewarding,
                    ReferralState::Rewarded,
                    Some(&order),
                    Some(&body),
                    now,
                )
            })
            .await?;
        self.get(invitee).await
    }

    /// The first order was refunded: rewards are taken back (unspent coupons voided;
    /// points reported for the ledger to claw back).
    pub async fn claw_back(&self, invitee: &str, order_id: &str) -> Result<Referral> {
        let r = self.get(invitee).await?;
        if r.state == ReferralState::ClawedBack || r.order_id.as_deref() != Some(order_id) {
            return Ok(r);
        }
        let mut rewards = r.rewards.clone().unwrap_or_else(|| json!({}));
        for side in ["inviter", "invitee"] {
            if let Some(id) = rewards[side]["coupon"].as_str().map(str::to_owned) {
                rewards[side]["clawed_back"] = match self.coupons.void(&id, ACTOR).await {
                    Ok(_) => json!("coupon voided"),
                    // Nothing is recorded: the claw-back is done again on the next call.
                    Err(Error::Store(e)) => return Err(Error::Store(e)),
                    Err(e) => json!(format!("coupon not voided: {}", e.code())),
                };
            }
        }
        let (inv, order, body, now) = (
            invitee.to_owned(),
            order_id.to_owned(),
            rewards.to_string(),
            self.now(),
        );
        let from = r.state;
        self.store
            .write_with(move |c| {
                q::transition(
                    c,
                    &inv,
                    from,
                    ReferralState::ClawedBack,
                    Some(&order),
                    Some(&body),
                    now,
                )
            })
            .await?;
        self.get(invitee).await
    }

    /// One referral.
    pub async fn get(&self, invitee: &str) -> Result<Referral> {
        let inv = invitee.to_owned();
        self.store
            .read_with(move |c| q::referral(c, &inv))
            .await?
            .map(Referral::from)
            .ok_or_else(|| Error::NotFound(format!("referral of {invitee:?}")))
    }

    /// Which of `users` were invited (have a referral as invitee, in any state): only
    /// their orders can reward or claw back a referral.
    pub async fn invitees_among(&self, users: Vec<String>) -> Result<std::collections::HashSet<String>> {
        Ok(self
            .store
            .read_with(move |c| {
                let keys: Vec<&str> = users.iter().map(String::as_str).collect();
                q::invitees_among(c, &keys)
            })
            .await?)
    }

    /// An inviter's referrals.
    pub async fn of_inviter(&self, inviter: &str) -> Result<Vec<Referral>> {
        let who = inviter.to_owned();
        Ok(self
            .store
            .read_with(move |c| q::referrals_of(c, &who))
            .await?
            .into_iter()
            .map(Referral::from)
            .collect())
    }
}
