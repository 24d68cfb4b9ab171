//! Birthday perks (R7.6; fixture F17): the member's tier perk, once per user per year.

use chrono::{Datelike, NaiveDate};
use flywheel_core::ErrorCode;
use flywheel_core::{Fen, Timestamp};
use flywheel_store::loyalty as q;
use serde::Serialize;

use crate::ledger::Loyalty;
use crate::tiers::TierStatus;
use crate::{Error, Result};

/// A birthday perk due to a member this year.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BirthdayPerk {
    /// The member.
    pub user_id: String,
    /// The tier the perk was granted for (the first grant's, on a repeat).
    pub tier: String,
    /// Its value, fen.
    pub value: Fen,
    /// The shop-local year it is for.
    pub year: i32,
    /// True when granted by this call; false when this year's perk was already granted
    /// (the caller delivers the perk only when true).
    pub granted_now: bool,
}

/// Whether a `YYYY-MM-DD` birthday falls on `today`. A 29 February birthday is
/// celebrated on 28 February in years without a 29 February (a [SUGGESTED DEFAULT]; the
/// seeds say nothing, §19 gap 13). `invalid_birthday` when the text is not a date.
pub fn is_birthday_on(birthday: &str, today: NaiveDate) -> Result<bool> {
    let b = NaiveDate::parse_from_str(birthday.trim(), "%Y-%m-%d").map_err(|_| {
        Error::invalid(
            ErrorCode::InvalidBirthday,
            format!("birthday {birthday:?} is not YYYY-MM-DD"),
        )
    })?;
    let (month, day) = match (b.month(), b.day()) {
        (2, 29) if NaiveDate::from_ymd_opt(today.year(), 2, 29).is_none() => (2, 28),
        md => md,
    };
    Ok(today.month() == month && today.day() == day)
}

impl Loyalty {
    /// Today's date in the shop timezone.
    pub fn today(&self) -> NaiveDate {
        self.local_date(self.now())
    }

    /// Whether a `YYYY-MM-DD` birthday is today in the shop timezone ([`is_birthday_on`]).
    pub fn is_birthday_today(&self, birthday: &str) -> Result<bool> {
        is_birthday_on(birthday, self.today())
    }

    /// Grants the birthday perk of each `(user, tier)` — the caller passes only members
    /// whose birthday is today ([`Loyalty::is_birthday_today`]) — once per user per
    /// shop-local year, in one transaction. A tier whose perk is 0 gives nothing (no
    /// record). `unknown_tier` refuses the whole call when a tier is not configured.
    pub async fn birthday_perks(&self, users: &[(String, String)]) -> Result<Vec<BirthdayPerk>> {
        let mut due = Vec::with_capacity(users.len());
        for (user, tier) in users {
            if user.trim().is_empty() {
                return Err(Error::invalid(ErrorCode::InvalidId, "user id must not be empty"));
            }
            let t =
                self.config.tiers.get(tier).ok_or_else(|| {
                    Error::invalid(ErrorCode::UnknownTier, format!("no tier named {tier:?}"))
                })?;
            if t.birthday_perk > Fen::ZERO {
                due.push((user.clone(), tier.clone(), t.birthday_perk));
            }
        }
        let now = self.now();
        let year = self.local_date(now).year();
        self.write(move |c| {
            let mut out = Vec::with_capacity(due.len());
            for (user, tier, value) in due {
                let granted_now = q::insert_birthday(c, &user, year.into(), &tier, value.0, now)?;
                let (tier, value) = match granted_now {
                    true => (tier, value),
                    false => {
                        q::birthday(c, &user, year.into())?.map_or((tier, value), |(t, v, _)| (t, Fen(v)))
                    }
                };
                out.push(BirthdayPerk {
                    user_id: user,
                    tier,
                    value,
                    year,
                    granted_now,
                });
            }
            Ok(out)
        })
        .await
    }

    /// A member's tier at `now` from their rolling 365-day net spend and growth: orders
    /// placed in `(now − 365 days, now]`, each counting total − refunded, cancelled ones
    /// 0, and the growth of their customer activity in that window (R7.2).
    pub async fn tier_of(&self, user: &str, now: Timestamp) -> Result<TierStatus> {
        let until = flywheel_core::time::to_millis(now);
        let (u, config, tz) = (user.to_owned(), self.config.clone(), self.tz);
        Ok(self
            .store
            .read_with(move |c| crate::tier_track::standing(c, &config, tz, &u, until))
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn birthdays_and_feb_29() {
        assert!(is_birthday_on("1990-05-20", d("2025-05-20")).unwrap());
        assert!(!is_birthday_on("1990-05-20", d("2025-05-21")).unwrap());
        assert!(is_birthday_on("2000-02-29", d("2025-02-28")).unwrap());
        assert!(!is_birthday_on("2000-02-29", d("2024-02-28")).unwrap());
        assert!(is_birthday_on("2000-02-29", d("2024-02-29")).unwrap());
        assert!(!is_birthday_on("2000-02-28", d("2024-02-29")).unwrap());
        assert_eq!(
            is_birthday_on("20-5", d("2025-05-20")).unwrap_err().code(),
            "invalid_birthday"
        );
    }
}
