//! Command-line interface. Every option also reads `FLYWHEEL_<OPTION>` from the
//! environment and, failing both, the optional TOML file given by `--config`
//! (default `flywheel.toml` in the working directory, if present).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Flywheel: e-commerce marketing automation and user growth in one binary.
///
/// Point your shop's Segment-compatible events at `flywheel serve`, or try
/// `flywheel demo` for a generated shop.
#[derive(Debug, Parser)]
#[command(name = "flywheel", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    /// Options shared by every command.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options of every command.
#[derive(Debug, Args, Clone, Default)]
pub struct GlobalArgs {
    /// TOML file with defaults for any option below (keys as the long option names, with
    /// underscores, e.g. `data_dir = "/var/lib/flywheel"`) and the tables `[audience]` (tag
    /// rules, lifecycle, RFM: docs/audience.md), `[loyalty]` (points, tiers:
    /// docs/loyalty.md), `[journeys]` (timezone, delivery, email relay, providers:
    /// docs/journeys.md), `[analytics]` (channels, guardrails, goals, reviews,
    /// benchmarks, notifications: docs/analytics.md) and `[import]` (`not_before`, the
    /// earliest date imported: docs/import.md). Default: ./flywheel.toml if it exists.
    #[arg(long, global = true, env = "FLYWHEEL_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Directory of the embedded store (SQLite file `flywheel.db`) and the admin token file.
    /// Created on first start, private to this user (mode 0700, files 0600). [default: ./data]
    #[arg(long, global = true, env = "FLYWHEEL_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Store URL: `sqlite://PATH` or `postgres://USER@HOST:PORT/DB` (add `?schema=NAME` to use
    /// and create a schema). [default: SQLite under --data-dir]
    #[arg(long, global = true, env = "FLYWHEEL_STORE", value_name = "URL")]
    pub store: Option<String>,
    /// SQLite durability: `normal` survives a crash or kill of the process (WAL); `full` also
    /// survives power loss, at some cost in write speed. [default: normal]
    #[arg(long, global = true, env = "FLYWHEEL_SQLITE_SYNCHRONOUS", value_enum)]
    pub sqlite_synchronous: Option<SyncArg>,
    /// Bound on SQLite's write-ahead log (`flywheel.db-wal`) in bytes; the bound is this or
    /// the database file's size, whichever is larger. The WAL is checkpointed into the
    /// database and truncated once it passes a quarter of the bound, and truncated to
    /// nothing at a graceful stop. [default: 1073741824 (1 GiB)]
    #[arg(long, global = true, env = "FLYWHEEL_SQLITE_WAL_LIMIT", value_name = "BYTES")]
    pub sqlite_wal_limit: Option<u64>,
    /// Log filter, e.g. `info`, `debug`, `flywheel_store=debug`. [default: info]
    #[arg(long, global = true, env = "FLYWHEEL_LOG", value_name = "FILTER")]
    pub log: Option<String>,
    /// Log format. [default: text]
    #[arg(long, global = true, env = "FLYWHEEL_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
}

/// SQLite sync level.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncArg {
    /// Durable across process crashes.
    Normal,
    /// Durable across power loss.
    Full,
}

/// What one server process does (`serve --role`).
#[derive(Debug, Clone, Copy, Default, ValueEnum, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Tracking and admin HTTP traffic, the console; no background services.
    Api,
    /// The background services (journeys, order rewards, guardrails, CLV, reviews, audience
    /// upkeep); HTTP only for /healthz, /readyz and /metrics.
    Worker,
    /// Both (one process does everything: the embedded default).
    #[default]
    All,
}

impl Role {
    /// Whether this process serves tracking and admin traffic.
    pub fn serves_api(self) -> bool {
        matches!(self, Role::Api | Role::All)
    }

    /// Whether this process runs the background services.
    pub fn runs_workers(self) -> bool {
        matches!(self, Role::Worker | Role::All)
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Output format of reporting commands.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq, Default)]
pub enum OutputFormat {
    /// Aligned columns.
    #[default]
    Table,
    /// JSON.
    Json,
    /// CSV with a header row.
    Csv,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server: tracking API (/v1), admin API (/api/v1), health and metrics.
    Serve(ServeArgs),
    /// Generate a realistic demo shop, ingest it through the tracking API, add a marketing
    /// history and CLV scores, then serve the console (http://HOST:PORT/console/).
    Demo(DemoArgs),
    /// Record marketing spend on a channel (for channel and campaign ROI); list a month's
    /// entries (--list) or delete a mistyped one (--delete).
    Spend(SpendArgs),
    /// Check every campaign's guardrails once (ROI < 1, CVR below expected) and pause the
    /// journeys that trip, with an alert; the server does this every few minutes.
    Guardrails,
    /// Import users, orders or events from a CSV or JSONL file, history included: records
    /// without a required column (an order's time, id, amount; the customer's id) are
    /// rejected, never dated now. `--map SRC=DEST` names columns; `--dry-run` shows how
    /// the file is understood without writing.
    Import(ImportArgs),
    /// Manage write keys of the tracking API.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// The admin token of the admin API and the console.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Look at profiles.
    #[command(subcommand)]
    Profile(ProfileCommand),
    /// Count, list, export and save segments (the segment language: docs/segments.md).
    #[command(subcommand)]
    Segment(SegmentCommand),
    /// Manage tags (標簽): rule tags, manual tags and their members.
    #[command(subcommand)]
    Tag(TagCommand),
    /// RFM per buyer: lifetimes-compatible summary (frequency, recency, T, monetary value),
    /// 1–5 scores and segment names.
    Rfm(RfmArgs),
    /// Coupon templates, issuing, codes and a user's coupons (docs/pricing.md).
    #[command(subcommand)]
    Coupon(CouponCommand),
    /// Points and member tiers of a user (docs/loyalty.md).
    #[command(subcommand)]
    Loyalty(LoyaltyCommand),
    /// Flash sales (秒殺): create from a JSON file, list with units left.
    #[command(subcommand)]
    FlashSale(FlashSaleCommand),
    /// Group buys (拼團): deals and groups.
    #[command(subcommand)]
    GroupBuy(GroupBuyCommand),
    /// Referrals (裂變): invite codes and referrals.
    #[command(subcommand)]
    Referral(ReferralCommand),
    /// Work set aside after repeated failures — order rewards (points, referral rewards,
    /// claw-backs) and journey steps (coupons, points, perks, tags, traits): list them,
    /// apply or resume one (`dead-letters retry ID`), or give one up (`dead-letters
    /// dismiss ID`).
    DeadLetters(DeadLettersArgs),
    /// Journeys (營銷自動化, docs/journeys.md): save, start, pause, stop, dry-run, per-step
    /// counts, the seed templates. A running server sees changes within a second.
    #[command(subcommand)]
    Journey(JourneyCommand),
    /// The message log: what was sent, suppressed (and why), delivered, opened, clicked.
    Messages(MessagesArgs),
    /// Show or set a user's consent per channel (email, sms, push, wechat, webhook; `*`
    /// is the global suppression).
    Consent(ConsentArgs),
    /// Reports (docs/analytics.md): KPIs, retention, funnels, LTV and CLV, campaigns,
    /// channels, attribution, uplift, goals, guardrail alerts.
    #[command(subcommand)]
    Report(ReportCommand),
    /// Saved funnels: save a funnel's steps, window and breakdown under a name, list,
    /// show or delete them; `report funnel --saved NAME` runs one.
    #[command(subcommand)]
    Funnel(FunnelCommand),
    /// Price a cart with promotions and coupons from a JSON file (docs/pricing.md): every
    /// line's payable amount, the rules applied and why the others did not apply.
    Price(PriceArgs),
}

/// Journey commands.
#[derive(Debug, Subcommand)]
pub enum JourneyCommand {
    /// List journeys with version and status.
    List {
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
    /// Print a journey's current definition (JSON).
    Show {
        /// Journey name.
        name: String,
    },
    /// Save a definition from a JSON or YAML file (`-` reads stdin): a new journey is a
    /// draft, a changed one a new version (running users finish on theirs).
    Save {
        /// The definition (docs/journeys.md).
        file: PathBuf,
        /// Start it once saved.
        #[arg(long)]
        start: bool,
    },
    /// Start (or resume) a journey.
    Start {
        /// Journey name.
        name: String,
    },
    /// Pause a journey: no entries, runs hold.
    Pause {
        /// Journey name.
        name: String,
    },
    /// Stop a journey: no entries, every run in progress ends.
    Stop {
        /// Journey name.
        name: String,
    },
    /// Delete a journey without runs in progress.
    Delete {
        /// Journey name.
        name: String,
    },
    /// The path each user would take now, sending nothing.
    DryRun {
        /// Journey name (or a definition file with --file).
        name: String,
        /// User ids, comma separated.
        #[arg(long, value_delimiter = ',', required = true)]
        users: Vec<String>,
        /// Walk this unsaved definition instead.
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// A send step's message rendered for one user, not sent.
    Preview {
        /// Journey name.
        name: String,
        /// The send step's id.
        #[arg(long)]
        step: String,
        /// The user to render for.
        #[arg(long)]
        user: String,
    },
    /// Visits per step, runs per state, messages per status.
    Stats {
        /// Journey name.
        name: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
    /// List the seed templates shipped with Flywheel.
    Templates,
    /// Save seed templates (all, or the named ones) as drafts, with the coupon templates
    /// they issue.
    Install {
        /// Template names (default: all).
        names: Vec<String>,
        /// Start them once saved.
        #[arg(long)]
        start: bool,
    },
}

/// The period and filters every report takes. Days are shop-local calendar days
/// (`[audience] timezone`); a period runs from the start of `--from` to the end of `--to`.
#[derive(Debug, Args, Clone)]
pub struct ReportScope {
    /// First day (YYYY-MM-DD). [default: 29 days before --to]
    #[arg(long)]
    pub from: Option<String>,
    /// Last day, included (YYYY-MM-DD). [default: today]
    #[arg(long)]
    pub to: Option<String>,
    /// Only the members of this saved segment.
    #[arg(long)]
    pub segment: Option<String>,
    /// Only this channel (kpi: orders credited to it; campaign, attribution: its rows).
    #[arg(long)]
    pub channel: Option<String>,
    /// Only this campaign (kpi: orders credited to it; campaign, attribution: its rows).
    #[arg(long)]
    pub campaign: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: OutputFormat,
}

/// Saved funnel commands.
#[derive(Debug, Subcommand)]
pub enum FunnelCommand {
    /// Save a funnel under a name (refused when a step names an event never received, or
    /// the name is taken).
    Save {
        /// The funnel's name.
        name: String,
        /// Event names in order, comma separated.
        #[arg(long, value_delimiter = ',', required = true)]
        steps: Vec<String>,
        /// Conversion window from step 1, hours.
        #[arg(long, default_value_t = 24.0)]
        window_hours: f64,
        /// Break down by this profile trait, or by a property of the step-1 event.
        #[arg(long)]
        breakdown: Option<String>,
    },
    /// List the saved funnels.
    List {
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
    /// Print one saved funnel (JSON).
    Show {
        /// The funnel's name.
        name: String,
    },
    /// Delete a saved funnel.
    Delete {
        /// The funnel's name.
        name: String,
    },
}

/// Report commands (formulas: docs/analytics.md). Each prints a table, or `--format
/// json|csv`; the same reports are served under `/api/v1/analytics/…`.
#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// GMV, net revenue, orders, buyers, AOV, repurchase rate, new vs returning buyers,
    /// visitor→buyer conversion, churn rate.
    Kpi {
        /// Period and filters.
        #[command(flatten)]
        scope: ReportScope,
        /// Also print one row per day.
        #[arg(long)]
        daily: bool,
    },
    /// Retention of the users who signed up (or first bought) in each day, ISO week or
    /// month of the period, with an average row weighted by cohort size.
    Cohort {
        /// Period (cohort starts) and filters.
        #[command(flatten)]
        scope: ReportScope,
        /// Periods after the cohort's (days, weeks or months, as --by), comma separated.
        #[arg(long, value_delimiter = ',', default_value = "1,7,30")]
        days: Vec<u32>,
        /// Cohort and retention periods: `day`, `week` (ISO, Monday to Sunday) or
        /// `month`, shop-local.
        #[arg(long, default_value = "day")]
        by: String,
        /// What starts a user's cohort: `signup` (first sign-up event) or
        /// `first-purchase` (first non-cancelled order).
        #[arg(long, default_value = "signup")]
        cohort: String,
    },
    /// Ordered funnel: users per step, conversion, drop-off, median time between steps.
    Funnel {
        /// Period (entries into step 1) and filters.
        #[command(flatten)]
        scope: ReportScope,
        /// Event names in order, comma separated; a name never received (and not a
        /// standard e-commerce event) is refused with the closest name received.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "Product Viewed,Product Added,Checkout Started,Order Completed"
        )]
        steps: Vec<String>,
        /// Conversion window from step 1, hours.
        #[arg(long, default_value_t = 24.0)]
        window_hours: f64,
        /// Break down by this profile trait, or by a property of the step-1 event
        /// (`properties.category`, `context.campaign.source`: each user under the value
        /// on their first step-1 event in the period).
        #[arg(long)]
        breakdown: Option<String>,
        /// Run this saved funnel (`flywheel funnel save`) with its steps, window and
        /// breakdown.
        #[arg(long, conflicts_with_all = ["steps", "window_hours", "breakdown"])]
        saved: Option<String>,
    },
    /// Historical LTV by first-order month; with --clv, predictive CLV per customer
    /// (BG/NBD + Gamma-Gamma): P(alive), expected purchases, churn-risk band.
    Ltv {
        /// Period (first orders) and filters.
        #[command(flatten)]
        scope: ReportScope,
        /// Fit BG/NBD + Gamma-Gamma on all customers and print per-customer predictions,
        /// observed at the end of the shop-local day --to (orders up to its next local
        /// midnight count), or now when --to is today.
        #[arg(long)]
        clv: bool,
        /// With --clv: at most this many customers, highest CLV first.
        #[arg(long, default_value_t = 20)]
        top: usize,
        /// With --clv: store every customer's predictions as profile traits
        /// (`clv_p_alive`, `clv_expected_purchases`, `clv_value`, `clv_churn_risk`) for
        /// segments, through the ingest pipeline.
        #[arg(long, requires = "clv")]
        save_traits: bool,
    },
    /// Campaign metrics, one row per campaign across its channels: sent, delivered, open
    /// rate, CTR, CVR, spend, true cost, CPA, ROI (revenue ÷ spend), ROAS (paid
    /// channels' revenue ÷ ad spend), profit ROI.
    Campaign {
        /// Period and filters.
        #[command(flatten)]
        scope: ReportScope,
        /// One row per campaign and channel instead (the table; JSON always carries each
        /// campaign's `by_channel`).
        #[arg(long)]
        by_channel: bool,
    },
    /// A month's spend, revenue and ROI per channel, with a budget reallocation.
    Channel {
        /// The month (YYYY-MM). [default: this month]
        #[arg(long)]
        month: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
    /// Revenue credited to campaigns by first or last touch.
    Attribution {
        /// Period and filters.
        #[command(flatten)]
        scope: ReportScope,
        /// `first` or `last`. [default: `[analytics.attribution] model`, last]
        #[arg(long)]
        model: Option<String>,
        /// Days before an order in which a touch counts. [default: 7]
        #[arg(long)]
        window_days: Option<u32>,
    },
    /// A journey's conversion against its holdout, with a 95 % interval.
    Uplift {
        /// The journey.
        journey: String,
        /// Period (entries) and filters.
        #[command(flatten)]
        scope: ReportScope,
    },
    /// Goals (`[analytics] goals`) with this quarter's progress.
    Goals {
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
    /// A weekly or monthly review: KPIs against the period before, retention
    /// observed in the period, campaigns, channels, goals, benchmarks and the
    /// alerts raised. The server writes one when each period ends (`[analytics.reviews]`).
    Review {
        /// `weekly` (Monday to Sunday) or `monthly`.
        #[arg(long, default_value = "weekly")]
        cadence: String,
        /// A day of the period (YYYY-MM-DD). [default: the last complete period]
        #[arg(long)]
        day: Option<String>,
        /// Store the review and raise its benchmark alerts, as the server does when one
        /// is due; a period already reviewed is left as it is.
        #[arg(long)]
        save: bool,
        /// Store it (as --save) and send it through `[analytics.notify]`.
        #[arg(long)]
        send: bool,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
    /// The stored reviews, newest period first.
    Reviews {
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
    /// Guardrail and benchmark alerts, newest first.
    Alerts {
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
}

/// `flywheel spend`: record marketing spend on a channel.
#[derive(Debug, Args)]
pub struct SpendArgs {
    /// The channel (e.g. `douyin_ads`; register it under `[analytics.channels]`).
    #[arg(long, required_unless_present_any = ["list", "delete"], conflicts_with_all = ["list", "delete"])]
    pub channel: Option<String>,
    /// Amount in 元 (e.g. `1200.50`).
    #[arg(long, required_unless_present_any = ["list", "delete"])]
    pub amount: Option<String>,
    /// The campaign the spend is for.
    #[arg(long)]
    pub campaign: Option<String>,
    /// The shop-local day of the spend (YYYY-MM-DD). [default: today]
    #[arg(long, conflicts_with_all = ["from", "to"])]
    pub day: Option<String>,
    /// A spend over a period: its first shop-local day (YYYY-MM-DD), with --to; the
    /// amount is spread evenly over the days, so any window's ROI takes its share.
    #[arg(long, requires = "to")]
    pub from: Option<String>,
    /// A spend over a period: its last shop-local day, included (YYYY-MM-DD).
    #[arg(long, requires = "from")]
    pub to: Option<String>,
    /// A note.
    #[arg(long)]
    pub note: Option<String>,
    /// List the entries of a month (YYYY-MM) instead. [default: this month]
    #[arg(long, num_args = 0..=1, default_missing_value = "", conflicts_with = "delete", value_name = "MONTH")]
    pub list: Option<String>,
    /// Delete the entry with this id instead (a mistyped amount, a duplicate).
    #[arg(long, value_name = "ID")]
    pub delete: Option<i64>,
    /// Output format of --list.
    #[arg(long, value_enum, default_value_t)]
    pub format: OutputFormat,
}

/// `flywheel messages`.
#[derive(Debug, Args)]
pub struct MessagesArgs {
    /// Messages of this user.
    #[arg(long, conflicts_with_all = ["journey", "run"], required_unless_present_any = ["journey", "run"])]
    pub user: Option<String>,
    /// Messages of this journey.
    #[arg(long, conflicts_with = "run")]
    pub journey: Option<String>,
    /// Messages of this run.
    #[arg(long)]
    pub run: Option<String>,
    /// At most this many, newest first.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(i64).range(1..=10000))]
    pub limit: i64,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: OutputFormat,
}

/// `flywheel consent`.
#[derive(Debug, Args)]
pub struct ConsentArgs {
    /// User id.
    pub user: String,
    /// Channel to set (`*`: global suppression).
    #[arg(long, requires = "state")]
    pub channel: Option<String>,
    /// `subscribed`, `unsubscribed`, `unknown`; for `*`: `suppressed` or `none`.
    #[arg(long, requires = "channel")]
    pub state: Option<String>,
}

/// Coupon commands.
#[derive(Debug, Subcommand)]
pub enum CouponCommand {
    /// Create a coupon template from a JSON file (`-` reads stdin).
    CreateTemplate {
        /// The template (see docs/pricing.md, "Coupons").
        file: PathBuf,
    },
    /// List templates with how many coupons each has issued.
    Templates {
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
    /// Issue a coupon of a template to a user (refused for a user outside the template's
    /// audience, as by the admin API).
    Issue {
        /// Template id.
        template: String,
        /// User id.
        user: String,
    },
    /// Generate unclaimed redemption codes of a template, one per line on stdout.
    Codes {
        /// Template id.
        template: String,
        /// How many (1 to 100000).
        count: i64,
    },
    /// Claim a redemption code for a user (refused for a user outside the template's
    /// audience, as by the admin API).
    Claim {
        /// The code.
        code: String,
        /// User id.
        user: String,
    },
    /// A user's coupons with their state.
    List {
        /// User id.
        user: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
    /// A coupon's audit trail: who issued, reserved, redeemed, returned it.
    Audit {
        /// Coupon id.
        id: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
}

/// Loyalty commands.
#[derive(Debug, Subcommand)]
pub enum LoyaltyCommand {
    /// A user's points: balance, lots and latest entries.
    Points {
        /// User id.
        user: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
    /// 簽到: today's check-in for a user.
    CheckIn {
        /// User id.
        user: String,
    },
    /// A user's member tier by rolling 365-day spend and growth (customer activity).
    Tier {
        /// User id.
        user: String,
    },
}

/// Flash-sale commands (in-process stock; a running server keeps its own counters).
#[derive(Debug, Subcommand)]
pub enum FlashSaleCommand {
    /// Create a flash sale from a JSON file (docs/pricing.md, "Flash sales").
    Create {
        /// The sale.
        file: PathBuf,
    },
    /// List flash sales with units left.
    List {
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
}

/// Group-buy commands.
#[derive(Debug, Subcommand)]
pub enum GroupBuyCommand {
    /// Create a deal from a JSON file.
    CreateDeal {
        /// The deal.
        file: PathBuf,
    },
    /// Open a group of a deal, led by a user.
    Open {
        /// Deal id.
        deal: String,
        /// Leader's user id.
        user: String,
    },
    /// Join a group.
    Join {
        /// Group id.
        group: String,
        /// User id.
        user: String,
    },
    /// Show a group and its members.
    Show {
        /// Group id.
        group: String,
    },
}

/// `flywheel dead-letters`: the list, or a retry.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct DeadLettersArgs {
    /// A retry or a dismissal instead of the list.
    #[command(subcommand)]
    pub action: Option<DeadLettersAction>,
    /// Output format of the list.
    #[arg(long, value_enum, default_value_t)]
    pub format: OutputFormat,
}

/// What to do with a dead letter.
#[derive(Debug, Subcommand)]
pub enum DeadLettersAction {
    /// Apply a dead-lettered item again now: it leaves the list when that works, and
    /// stays with one more attempt (exit code 1) when it fails again. A journey step is
    /// resumed: it leaves the list and the running server does it again.
    Retry {
        /// Its id, as the list shows it.
        id: i64,
    },
    /// Give a dead-lettered item up: it leaves the list without being applied (a journey
    /// run waiting at the step ends).
    Dismiss {
        /// Its id, as the list shows it.
        id: i64,
    },
}

/// Referral commands.
#[derive(Debug, Subcommand)]
pub enum ReferralCommand {
    /// A user's invite code (made on first use).
    Code {
        /// User id.
        user: String,
    },
    /// A referral by invitee.
    Show {
        /// The invited user.
        invitee: String,
    },
    /// Who a user invited.
    List {
        /// The inviter.
        inviter: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
}

/// Cart pricing options.
#[derive(Debug, Args)]
pub struct PriceArgs {
    /// JSON file: `{"cart", "buyer", "promotions", "coupons", "policy", "now", "wallet"}`;
    /// `-` reads stdin. With `"wallet": true` the buyer's usable coupons are read from the
    /// store and join the pricing, as in the admin API.
    pub file: PathBuf,
    /// Use the combination of the coupons that pays least instead of all of them.
    #[arg(long)]
    pub best: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: OutputFormat,
}

/// RFM report options.
#[derive(Debug, Args)]
pub struct RfmArgs {
    /// Observation end; orders after it are ignored. A bare date YYYY-MM-DD means the end
    /// of that shop-local day (its orders up to local midnight count); an RFC 3339 time
    /// means that instant. [default: now]
    #[arg(long, value_name = "DATE|TIME")]
    pub as_of: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: OutputFormat,
}

/// Segment commands. Changes made here are stored at once; a running server picks them up
/// when it restarts (use the admin API to change a running server).
#[derive(Debug, Subcommand)]
pub enum SegmentCommand {
    /// How many profiles match an expression, e.g. `spend(30d) > 1000 元 and gender = "女"`.
    Count {
        /// The expression.
        expression: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
    /// Every matching profile as CSV (`profile_id,user_id`) on stdout.
    Export {
        /// The expression (or give --name).
        #[arg(required_unless_present = "name")]
        expression: Option<String>,
        /// Export a saved segment instead.
        #[arg(long, conflicts_with = "expression")]
        name: Option<String>,
    },
    /// List saved segments with their sizes.
    List {
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
    /// Save a segment (with --replace, change an existing one).
    Create {
        /// Unique name.
        name: String,
        /// The expression.
        expression: String,
        /// What it is for.
        #[arg(long)]
        description: Option<String>,
        /// Replace the segment of that name instead of refusing.
        #[arg(long)]
        replace: bool,
    },
    /// Delete a saved segment.
    Delete {
        /// The name.
        name: String,
    },
}

/// Tag commands (see [`SegmentCommand`] about a running server).
#[derive(Debug, Subcommand)]
pub enum TagCommand {
    /// List tags with their groups, rules and sizes.
    List {
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
    /// Create a rule tag (with --rule) or a manual tag (with --replace, change one).
    Create {
        /// Unique name.
        name: String,
        /// The rule (a segment expression); without it the tag is manual.
        #[arg(long)]
        rule: Option<String>,
        /// Tag group, e.g. 年齡段.
        #[arg(long)]
        group: Option<String>,
        /// What it means.
        #[arg(long)]
        description: Option<String>,
        /// Replace the tag of that name instead of refusing.
        #[arg(long)]
        replace: bool,
    },
    /// Delete a tag (not a built-in one).
    Delete {
        /// The name.
        name: String,
    },
    /// Put a manual tag on profiles (any of their ids), given as arguments or in a file.
    Add {
        /// The tag.
        name: String,
        /// Profile ids (userId, anonymousId, user:ID, anon:ID).
        #[arg(required_unless_present = "file")]
        profiles: Vec<String>,
        /// A file of ids: the first column of a CSV (a `profile_id`, `user_id` or `id` header
        /// line is skipped), e.g. the output of `flywheel segment export`.
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
    },
    /// Take a manual tag off profiles.
    Remove {
        /// The tag.
        name: String,
        /// Profile ids.
        #[arg(required = true)]
        profiles: Vec<String>,
    },
}

/// Admin token commands.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Print the admin token generated on first start and saved in the data directory
    /// (DATA_DIR/admin_token); a token given by --admin-token / FLYWHEEL_ADMIN_TOKEN is not
    /// saved.
    Show,
}

/// Server options.
#[derive(Debug, Args, Clone, Default)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port. Prints `listening on http://HOST:PORT`
    /// once requests are accepted. [default: 127.0.0.1:8080]
    #[arg(long, env = "FLYWHEEL_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,
    /// Largest tracking request body in bytes, after gunzip (Segment: 512000; at most
    /// 4194304, RudderStack's). [default: 512000]
    #[arg(long, env = "FLYWHEEL_MAX_BATCH_BYTES", value_name = "BYTES")]
    pub max_batch_bytes: Option<usize>,
    /// Largest single tracking message in bytes. [default: 32768]
    #[arg(long, env = "FLYWHEEL_MAX_MESSAGE_BYTES", value_name = "BYTES")]
    pub max_message_bytes: Option<usize>,
    /// Admin API token (prefer the environment variable). [default: generated on first start
    /// and saved to DATA_DIR/admin_token (mode 0600); its path is printed, not the token]
    #[arg(
        long,
        env = "FLYWHEEL_ADMIN_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub admin_token: Option<String>,
    /// Also print a newly generated admin token on stdout (it ends up in service logs:
    /// prefer `flywheel token show`).
    #[arg(long)]
    pub print_admin_token: bool,
    /// Redis URL (`redis://HOST:PORT`) for the counters several processes share:
    /// flash-sale stock, frequency-cap reservations, rate limits. [default: in-process]
    #[arg(long, env = "FLYWHEEL_REDIS", value_name = "URL")]
    pub redis: Option<String>,
    /// What this process does: `api` takes tracking and admin traffic, `worker` runs the
    /// background services (and serves only /healthz, /readyz, /metrics), `all` does both.
    /// Any number of each may run on one PostgreSQL store. [default: all]
    #[arg(long, env = "FLYWHEEL_ROLE", value_enum, value_name = "ROLE")]
    pub role: Option<Role>,
    /// NATS JetStream URL (`nats://HOST:PORT`) over which the processes on one store wake
    /// each other (new events, audience changes, changed settings) at once instead of at
    /// their next poll. [default: none: one process, or polling]
    #[arg(long, env = "FLYWHEEL_BUS", value_name = "URL")]
    pub bus: Option<String>,
    /// Tracking batches that may wait for the writer before new ones get 503. [default: 4096]
    #[arg(long, env = "FLYWHEEL_INGEST_QUEUE", value_name = "BATCHES")]
    pub ingest_queue: Option<usize>,
    /// Connections served at once; more wait until one closes. [default: 2048]
    #[arg(long, env = "FLYWHEEL_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<usize>,
    /// Seconds a connection has to send a complete request head after opening or after its
    /// previous response; an idle keep-alive connection is closed after it. [default: 10]
    #[arg(long, env = "FLYWHEEL_HEADER_TIMEOUT_SECS", value_name = "SECS")]
    pub header_timeout_secs: Option<u64>,
    /// Seconds a request body may send nothing before it is refused (408) and its
    /// connection closed. [default: 10]
    #[arg(long, env = "FLYWHEEL_BODY_IDLE_TIMEOUT_SECS", value_name = "SECS")]
    pub body_idle_timeout_secs: Option<u64>,
    /// Request-body bytes held in memory at once across all connections; a body that does not
    /// fit is refused with 503 and Retry-After. [default: 67108864 (64 MiB)]
    #[arg(long, env = "FLYWHEEL_MAX_INFLIGHT_BODY_BYTES", value_name = "BYTES")]
    pub max_inflight_body_bytes: Option<usize>,
    /// Times an order's points or referral reward may fail for a reason of its own (not a
    /// store outage, which is retried until the store is back) before it is listed as
    /// dead-lettered (`flywheel dead-letters`) with an alert and the workflow moves on.
    /// [default: 5]
    #[arg(long, env = "FLYWHEEL_DEAD_LETTER_AFTER", value_name = "N")]
    pub dead_letter_after: Option<u32>,
}

/// Demo options.
#[derive(Debug, Args, Clone)]
pub struct DemoArgs {
    /// Server options for the demo server.
    #[command(flatten)]
    pub serve: ServeArgs,
    /// Number of shop users to generate.
    #[arg(long, env = "FLYWHEEL_DEMO_USERS", default_value_t = 20_000)]
    pub users: usize,
    /// Random seed: the same seed and end date give the same shop.
    #[arg(long, env = "FLYWHEEL_DEMO_SEED", default_value_t = 42)]
    pub seed: u64,
    /// Last day of the generated year (YYYY-MM-DD, UTC). [default: today]
    #[arg(long, env = "FLYWHEEL_DEMO_END", value_name = "DATE")]
    pub end: Option<String>,
    /// Generate and ingest, then exit instead of serving.
    #[arg(long)]
    pub no_serve: bool,
}

/// What an import file holds.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum KindArg {
    /// One user per record (becomes an identify).
    Users,
    /// Orders (becomes Order Completed; CSV: one row per order line).
    Orders,
    /// Segment messages of any type.
    Events,
}

/// Import file format.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum FormatArg {
    /// CSV with a header row.
    Csv,
    /// One JSON object per line.
    Jsonl,
}

/// Import options.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// What the file holds (columns: see docs/import.md).
    #[arg(long, value_enum)]
    pub kind: KindArg,
    /// File format. [default: from the extension: .csv, .jsonl/.ndjson/.json]
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,
    /// The file. Rejected records go to FILE.rejects.jsonl.
    pub file: PathBuf,
    /// Read the file's column SRC as the field DEST, e.g. `--map ordered_at=timestamp`
    /// (repeatable; `--map SRC=` ignores a column). A mapped column replaces a column
    /// already named DEST.
    #[arg(long = "map", value_name = "SRC=DEST")]
    pub map: Vec<flywheel_ingest::import::columns::ColumnRename>,
    /// Reject records dated before this (YYYY-MM-DD: the start of that shop-local day, or
    /// an RFC 3339 time). [default: `[import] not_before` of the config file, else none:
    /// history of any date is imported]
    #[arg(long, value_name = "DATE")]
    pub not_before: Option<String>,
    /// Read and validate the file, print how every column is understood and what would be
    /// accepted or rejected, and write nothing (no store, no reject file).
    #[arg(long)]
    pub dry_run: bool,
    /// Summary format.
    #[arg(long = "output", value_enum, default_value_t)]
    pub output: OutputFormat,
}

/// What a new write key's events may change.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ScopeArg {
    /// For browsers and apps, where the key is public: behaviour only. Orders, refunds
    /// and cancellations are kept as plain events (no points, tier, spend or referral
    /// reward); email, phone, push and WeChat ids, tier and predicted-CLV traits are
    /// dropped; its events never merge two known customers.
    Client,
    /// For the shop's backend, kept secret: orders, refunds, cancellations and contact
    /// details too.
    Server,
}

impl From<ScopeArg> for flywheel_store::KeyScope {
    fn from(s: ScopeArg) -> Self {
        match s {
            ScopeArg::Client => flywheel_store::KeyScope::Client,
            ScopeArg::Server => flywheel_store::KeyScope::Server,
        }
    }
}

/// Write-key commands.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a write key; its secret is printed once. Say what it is for with --scope:
    /// `client` for a web page or an app (anyone can read the key there), `server` for
    /// the shop's backend. There is no default: a key that ends up in a browser must not
    /// be able to credit orders or change where messages go.
    Create {
        /// A name to recognise the key by (e.g. the shop or SDK it is for).
        name: String,
        /// What its events may change: `client` (browsers, apps: behaviour only) or
        /// `server` (the shop's backend: also orders, refunds and contact details).
        #[arg(long, value_enum)]
        scope: ScopeArg,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
    /// List write keys with their scope (never their secrets). Keys made before scopes
    /// existed are server keys.
    List {
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
    /// Revoke a write key by id (`key_…`); requests with it are refused within 5 seconds.
    Revoke {
        /// The key id.
        id: String,
    },
}

/// Profile commands.
#[derive(Debug, Subcommand)]
pub enum ProfileCommand {
    /// Show a merged profile by any of its ids (userId, anonymousId, user:ID, anon:ID).
    Show {
        /// The id.
        id: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
        /// Also show this many latest events.
        #[arg(long, default_value_t = 10)]
        events: usize,
    },
}
