//! The one vocabulary of refusals: every error a client can see carries one
//! [`ErrorCode`], a stable snake_case string with the HTTP status it is answered with.
//!
//! Rule: one code per distinct refusal, so a client can act on the code alone; a code,
//! once published, keeps its spelling. Every domain crate's error exposes
//! `code() -> ErrorCode`, the API maps it to a status and a JSON body in one place, and
//! `docs/errors.md` lists every code (a test holds the page and this enum together).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Declares [`ErrorCode`] from one table: variant, code string, HTTP status, doc.
macro_rules! error_codes {
    ($( $(#[doc = $doc:literal])+ $variant:ident = $code:literal, $status:literal; )+) => {
        /// A stable machine-readable refusal code (see the module documentation).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum ErrorCode {
            $( $(#[doc = $doc])+ $variant, )+
        }

        impl ErrorCode {
            /// Every code, in declaration order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant),+];

            /// The code as clients see it (`"not_found"`).
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $code,)+
                }
            }

            /// The HTTP status this refusal is answered with.
            pub const fn status(self) -> u16 {
                match self {
                    $(ErrorCode::$variant => $status,)+
                }
            }
        }
    };
}

error_codes! {
    // ---- Requests: authentication, bodies, query strings (api) ----
    /// The admin token is missing or wrong.
    Unauthorized = "unauthorized", 401;
    /// The `Authorization` header of a tracking call is not `Basic base64(writeKey:)`.
    InvalidAuthorization = "invalid_authorization", 401;
    /// A tracking call carries no write key.
    MissingWriteKey = "missing_write_key", 401;
    /// The write key is unknown or revoked.
    InvalidWriteKey = "invalid_write_key", 401;
    /// A provider callback's signature does not verify.
    BadSignature = "bad_signature", 401;
    /// A signed provider callback already applied, sent again while its signature is fresh.
    CallbackReplayed = "callback_replayed", 409;
    /// The request body is not valid JSON or not the expected shape.
    InvalidJson = "invalid_json", 400;
    /// The request body is not valid UTF-8.
    InvalidUtf8 = "invalid_utf8", 400;
    /// The gzip request body could not be decompressed.
    InvalidGzip = "invalid_gzip", 400;
    /// The request body could not be read to its end.
    InvalidBody = "invalid_body", 400;
    /// The request body is larger than the route accepts.
    BodyTooLarge = "body_too_large", 413;
    /// The request body stalled: nothing arrived for too long.
    BodyTimeout = "body_timeout", 408;
    /// The server is reading as many request bodies as it holds at once.
    BodyBudgetExhausted = "body_budget_exhausted", 503;
    /// A query parameter is unknown or its value is malformed.
    InvalidQuery = "invalid_query", 400;
    /// A path segment is malformed (an id that is not a number).
    InvalidPath = "invalid_path", 400;
    /// A `limit` is out of range.
    InvalidLimit = "invalid_limit", 400;
    /// A paging cursor is not one this server handed out.
    InvalidCursor = "invalid_cursor", 400;
    /// A time parameter is not ISO-8601.
    InvalidTime = "invalid_time", 400;
    /// The name in the body differs from the name in the path.
    NameMismatch = "name_mismatch", 400;
    /// A dry run names no user or too many.
    InvalidUsers = "invalid_users", 400;
    /// A profile lookup names no profile or too many.
    InvalidProfiles = "invalid_profiles", 400;
    /// A request that must be idempotent carries no `Idempotency-Key` header.
    IdempotencyKeyMissing = "idempotency_key_missing", 400;
    /// The `Idempotency-Key` is empty, too long or not printable ASCII.
    InvalidIdempotencyKey = "invalid_idempotency_key", 400;
    /// The idempotency key was used for a different request.
    IdempotencyKeyReused = "idempotency_key_reused", 409;
    /// The request with this idempotency key is still being written.
    ExchangeInProgress = "exchange_in_progress", 409;
    /// The route, or the thing it names, does not exist.
    NotFound = "not_found", 404;
    /// Too many requests for this write key (tracking API) or admin caller in a short time.
    RateLimited = "rate_limited", 429;

    // ---- Server side ----
    /// The server is not ready to serve (a dependency is down).
    NotReady = "not_ready", 503;
    /// The ingestion queue is full.
    Overloaded = "overloaded", 503;
    /// The server is shutting down.
    ShuttingDown = "shutting_down", 503;
    /// The store failed.
    StoreError = "store_error", 500;
    /// Reading a file failed.
    IoError = "io_error", 500;
    /// The server failed otherwise.
    Internal = "internal", 500;
    /// A dead-letter item failed again when retried.
    RetryFailed = "retry_failed", 409;

    // ---- Tracking API messages (ingest) ----
    /// A message is larger than the per-message limit.
    MessageTooLarge = "message_too_large", 400;
    /// A batch is larger than the batch limit.
    BatchTooLarge = "batch_too_large", 400;
    /// A batch has no messages.
    EmptyBatch = "empty_batch", 400;
    /// A batch body has no `batch` array.
    MissingBatch = "missing_batch", 400;
    /// A message is not a JSON object.
    InvalidMessage = "invalid_message", 400;
    /// A batch item has no `type`.
    MissingType = "missing_type", 400;
    /// A field has the wrong JSON type.
    WrongType = "wrong_type", 400;
    /// A message `type` is not track, identify, page, screen, group or alias.
    UnknownType = "unknown_type", 400;
    /// A message has neither `userId` nor `anonymousId` (an alias call: not both `userId` and `previousId`).
    MissingId = "missing_id", 400;
    /// A user id is empty or too long.
    InvalidId = "invalid_id", 400;
    /// A `messageId` is empty or too long.
    InvalidMessageId = "invalid_message_id", 400;
    /// A track call has no event name.
    MissingEvent = "missing_event", 400;
    /// A group call has no `groupId`.
    MissingGroupId = "missing_group_id", 400;
    /// A name (event, tag, segment) is empty, too long or holds control characters.
    InvalidName = "invalid_name", 400;
    /// A timestamp is not ISO-8601.
    InvalidTimestamp = "invalid_timestamp", 400;
    /// A timestamp is before 2000 (tracking API; for an import, before its `--not-before`
    /// floor) or more than a day in the future.
    TimestampOutOfRange = "timestamp_out_of_range", 400;
    /// An e-commerce event has no `properties.order_id`.
    MissingOrderId = "missing_order_id", 400;
    /// An amount of money is not a decimal number.
    InvalidMoney = "invalid_money", 400;
    /// An amount of money is negative.
    NegativeAmount = "negative_amount", 400;
    /// A quantity is negative.
    NegativeQuantity = "negative_quantity", 400;
    /// An amount is too large to count.
    AmountTooLarge = "amount_too_large", 400;
    /// An import file's record cannot be read (not JSON, or a CSV row of the wrong shape).
    UnreadableRecord = "unreadable_record", 400;
    /// An import record lacks a required column or field (an order's time, its id, its
    /// amount, the customer's id), or its cell is empty; the file's header may lack it for
    /// every record.
    MissingColumn = "missing_column", 400;

    // ---- Audience: tags, segments, the segment language ----
    /// A segment expression does not parse (the message gives line and column).
    InvalidExpression = "invalid_expression", 400;
    /// A segment expression or definition is well-formed but wrong (a value of the wrong type, a missing part).
    InvalidSegment = "invalid_segment", 400;
    /// A tag definition is wrong (a rule tag without a rule, a manual tag with one).
    InvalidTag = "invalid_tag", 400;
    /// An expression names a trait the catalogue does not have.
    UnknownTrait = "unknown_trait", 400;
    /// An expression names an event never received and not a standard one.
    UnknownEvent = "unknown_event", 400;
    /// An expression or a journey step names a tag that does not exist.
    UnknownTag = "unknown_tag", 400;
    /// An expression names a segment that does not exist.
    UnknownSegment = "unknown_segment", 400;
    /// A tag or segment would refer to itself through others.
    CyclicDefinition = "cyclic_definition", 400;
    /// A tag's members are set by hand, but the tag follows a rule.
    NotManualTag = "not_manual_tag", 400;
    /// A tag, segment or saved funnel of this name already exists.
    NameTaken = "name_taken", 409;
    /// The tag is built in (configured in `flywheel.toml`).
    BuiltIn = "built_in", 409;
    /// Other tags, segments or journeys use this one.
    InUse = "in_use", 409;

    // ---- Journeys and channels ----
    /// A journey definition does not parse or breaks a rule of definitions.
    InvalidJourney = "invalid_journey", 400;
    /// A message template does not compile, uses unknown variables, or cannot render for the sample customer (an operation on values of the wrong kind, a range too long).
    InvalidMessageTemplate = "invalid_message_template", 400;
    /// A message template runs into a render limit (size, time, memory) on the sample customer.
    TemplateOverLimit = "template_over_limit", 400;
    /// A channel name is not email, sms, push, wechat or webhook.
    UnknownChannel = "unknown_channel", 400;
    /// The step is not a send step.
    NotSendStep = "not_send_step", 400;
    /// A consent state is not one of the states of its channel.
    InvalidConsent = "invalid_consent", 400;
    /// A provider's delivery report is not `{"message_id", "status", "reason"?}` with a known status.
    InvalidDeliveryReport = "invalid_delivery_report", 400;
    /// The journey has runs in progress.
    RunsInProgress = "runs_in_progress", 409;

    // ---- Promotions: carts, coupons, flash sales, group buys, referrals ----
    /// A cart has no lines.
    EmptyCart = "empty_cart", 400;
    /// A cart has more lines than priced at once.
    CartTooLarge = "cart_too_large", 400;
    /// A cart line lacks its shop or product.
    InvalidLine = "invalid_line", 400;
    /// Two cart lines share an id.
    DuplicateLine = "duplicate_line", 400;
    /// A quantity is out of range.
    InvalidQuantity = "invalid_quantity", 400;
    /// A promotion or coupon rule is malformed.
    InvalidRule = "invalid_rule", 400;
    /// Two rules share an id.
    DuplicateRule = "duplicate_rule", 400;
    /// Too many coupon combinations to search for the best one.
    TooManyCoupons = "too_many_coupons", 400;
    /// A coupon template is malformed.
    InvalidTemplate = "invalid_template", 400;
    /// A coupon template of this id already exists.
    TemplateExists = "template_exists", 409;
    /// A coupon template's audience expression is refused.
    InvalidAudience = "invalid_audience", 400;
    /// The audience of a coupon template cannot be checked right now.
    AudienceUnavailable = "audience_unavailable", 503;
    /// The user is not in the coupon template's audience.
    NotInAudience = "not_in_audience", 409;
    /// A coupon count to generate is out of range.
    InvalidCount = "invalid_count", 400;
    /// A coupon needs an owner.
    InvalidOwner = "invalid_owner", 400;
    /// A user id is missing.
    InvalidUser = "invalid_user", 400;
    /// A reservation's hold time is out of range.
    InvalidHold = "invalid_hold", 400;
    /// Not enough coupons (or flash-sale units) are left.
    SoldOut = "sold_out", 409;
    /// The user already holds the most coupons of this kind allowed.
    PerUserLimit = "per_user_limit", 409;
    /// The coupon code has been claimed.
    AlreadyClaimed = "already_claimed", 409;
    /// The coupon code has not been claimed yet.
    Unclaimed = "unclaimed", 409;
    /// The coupon was spent on another order.
    AlreadyRedeemed = "already_redeemed", 409;
    /// The coupon is held for another order.
    Reserved = "reserved", 409;
    /// The coupon was taken back.
    Void = "void", 409;
    /// The coupon cannot be used in its state.
    Unusable = "unusable", 409;
    /// The coupon, code or hold has expired.
    Expired = "expired", 409;
    /// The coupon or sale is not usable yet.
    NotStarted = "not_started", 409;
    /// The sale has ended.
    Ended = "ended", 409;
    /// The coupon belongs to another user.
    NotOwner = "not_owner", 409;
    /// The coupon changed meanwhile; retry.
    ConcurrentChange = "concurrent_change", 409;
    /// Pricing: no line of the cart is covered by the coupon.
    OutOfScope = "out_of_scope", 409;
    /// Pricing: the cart's amount in scope is below the threshold.
    BelowThreshold = "below_threshold", 409;
    /// Pricing: the cart's quantity in scope is below the threshold.
    BelowQuantity = "below_quantity", 409;
    /// Pricing: an exclusive coupon combines with no other.
    Exclusive = "exclusive", 409;
    /// Pricing: the coupon does not combine with one already applied.
    ExcludedBy = "excluded_by", 409;
    /// Pricing: another coupon of the same group is used.
    GroupTaken = "group_taken", 409;
    /// Pricing: the coupon is for a first order only.
    NotFirstOrder = "not_first_order", 409;
    /// Pricing: the buyer's tier is not eligible.
    TierNotEligible = "tier_not_eligible", 409;
    /// Pricing: the buyer is not in the coupon's audience.
    Audience = "audience", 409;
    /// Pricing: an item discount already takes more off.
    BetterItemDiscount = "better_item_discount", 409;
    /// Pricing: the coupon is not part of the best combination.
    NotInBestCombination = "not_in_best_combination", 409;
    /// Pricing: nothing is left to take off.
    NothingToDiscount = "nothing_to_discount", 409;
    /// A flash sale is malformed.
    InvalidSale = "invalid_sale", 400;
    /// A flash sale of this id already exists.
    SaleExists = "sale_exists", 409;
    /// A flash-sale order lacks its user or quantity.
    InvalidOrder = "invalid_order", 400;
    /// The flash-sale hold lapsed and its units went back.
    Released = "released", 409;
    /// The flash-sale stock cannot be reached right now.
    StockUnavailable = "stock_unavailable", 503;
    /// A group-buy deal is malformed.
    InvalidDeal = "invalid_deal", 400;
    /// A group-buy deal of this id already exists.
    DealExists = "deal_exists", 409;
    /// A group needs a leader or member.
    InvalidMember = "invalid_member", 400;
    /// The user is already in this group.
    AlreadyMember = "already_member", 409;
    /// The group is full.
    GroupFull = "group_full", 409;
    /// The group expired before it filled.
    GroupExpired = "group_expired", 409;
    /// A referral program is malformed.
    InvalidProgram = "invalid_program", 400;
    /// One cannot invite oneself.
    SelfReferral = "self_referral", 409;
    /// The invitee was referred already.
    AlreadyReferred = "already_referred", 409;
    /// The inviter reached today's referral cap.
    DailyCap = "daily_cap", 409;
    /// Only the first paid order is rewarded.
    AlreadyRewarded = "already_rewarded", 409;

    // ---- Loyalty: points, tiers, check-in ----
    /// A points amount is out of range.
    InvalidPoints = "invalid_points", 400;
    /// Fewer points are available than asked for.
    InsufficientPoints = "insufficient_points", 409;
    /// The most shares that earn points today are reached.
    ShareCapReached = "share_cap_reached", 409;
    /// The source key of a points entry is used by another user.
    SourceKeyTaken = "source_key_taken", 409;
    /// The key of a points entry was used for another amount.
    KeyReused = "key_reused", 409;
    /// A birthday is not `YYYY-MM-DD`.
    InvalidBirthday = "invalid_birthday", 400;
    /// A tier ladder is malformed.
    InvalidTier = "invalid_tier", 400;
    /// Tiers do not rise with spend.
    TiersNotMonotonic = "tiers_not_monotonic", 400;
    /// No tier of this name exists.
    UnknownTier = "unknown_tier", 400;
    /// The points settings are out of range.
    InvalidPointsConfig = "invalid_points_config", 400;
    /// A timezone is not an IANA name.
    InvalidTimezone = "invalid_timezone", 400;

    // ---- Analytics ----
    /// A day or month is malformed, reversed or outside 1970..2999.
    InvalidDate = "invalid_date", 400;
    /// The period is longer than `[analytics] max_range_days`.
    RangeTooLarge = "range_too_large", 400;
    /// The report names a journey that does not exist.
    UnknownJourney = "unknown_journey", 400;
    /// A funnel has too few or too many steps, or a window that is not positive.
    InvalidFunnel = "invalid_funnel", 400;
    /// A funnel step names an event never received and not a standard one (the message
    /// suggests the closest name received).
    UnknownFunnelStep = "unknown_funnel_step", 400;
    /// A cohort day number is out of range.
    InvalidCohort = "invalid_cohort", 400;
    /// A campaign spend is negative or names no channel.
    InvalidSpend = "invalid_spend", 400;
    /// The CLV model cannot be fitted on the shop's orders.
    ClvNotFitted = "clv_not_fitted", 409;
    /// A setting in `flywheel.toml` is out of range.
    InvalidConfig = "invalid_config", 500;
}

impl ErrorCode {
    /// The code named `s`, if there is one.
    pub fn parse(s: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.iter().copied().find(|c| c.as_str() == s)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown error code {0:?}")]
pub struct UnknownErrorCode(pub String);

impl FromStr for ErrorCode {
    type Err = UnknownErrorCode;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ErrorCode::parse(s).ok_or_else(|| UnknownErrorCode(s.to_owned()))
    }
}

impl PartialEq<str> for ErrorCode {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for ErrorCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_snake_case_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for &c in ErrorCode::ALL {
            let s = c.as_str();
            assert!(seen.insert(s), "{s} twice");
            assert!(
                !s.is_empty()
                    && s.chars()
                        .all(|ch| ch.is_ascii_lowercase() || ch == '_' || ch.is_ascii_digit()),
                "{s} is not snake_case"
            );
            assert_eq!(s.parse::<ErrorCode>(), Ok(c));
            let json = serde_json::to_value(c).unwrap();
            assert_eq!(json, serde_json::json!(s));
            assert_eq!(serde_json::from_value::<ErrorCode>(json).unwrap(), c);
            assert!((400..600).contains(&c.status()), "{s}: {}", c.status());
        }
        assert!("no_such_code".parse::<ErrorCode>().is_err());
        assert!(serde_json::from_value::<ErrorCode>(serde_json::json!("nope")).is_err());
    }

    #[test]
    fn compares_with_its_string() {
        assert_eq!(ErrorCode::NotFound, "not_found");
        assert_eq!(ErrorCode::NotFound.to_string(), "not_found");
        assert_eq!(ErrorCode::NotFound.status(), 404);
    }
}
