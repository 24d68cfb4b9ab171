//! Message templates (issue 6 §5): `minijinja` text with the variables a send can fill.
//!
//! A [`MessageTemplate`] has a text part (the SMS, push or WeChat text, and an email's
//! plain-text part) and, for email, a subject and an HTML part. It is checked when it is
//! saved ([`MessageTemplate::compile`]): a syntax error, or a variable that no send can
//! fill (not in the [`VariableCatalog`]), is an error then — not a blank in a message
//! already on its way. The HTML part is HTML-escaped, the others are not. Rendering is
//! strict: a variable the catalog knows but this user lacks (no birthday on file) fails
//! the render unless the template says what to do, e.g.
//! `{{ profile.name | default("顧客") }}` or `{% if profile.birthday is defined %}`.
//!
//! Rendering is bounded ([`RenderLimits`]): a part that executes more template steps or
//! renders more bytes than allowed fails with [`TemplateError::Limit`]. Time and memory
//! are bounded by rendering in the sandbox process ([`crate::sandbox`]).

use std::collections::BTreeSet;
use std::io;

use minijinja::{AutoEscape, Environment, ErrorKind, UndefinedBehavior};

use crate::limits::{Limit, RenderLimits};

/// A template that cannot be saved or rendered.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TemplateError {
    /// A part does not parse.
    #[error("{part}: {detail}")]
    Syntax {
        /// `subject`, `html` or `text`.
        part: &'static str,
        /// The parser's message, with the line.
        detail: String,
    },
    /// A part uses variables no send can fill.
    #[error("{part}: unknown variable(s) {}; known are {known}", names.join(", "))]
    UnknownVariables {
        /// `subject`, `html` or `text`.
        part: &'static str,
        /// The unknown dotted paths, sorted.
        names: Vec<String>,
        /// The catalog's roots, for the message.
        known: String,
    },
    /// This user lacks a value the template needs without a `default`.
    #[error("{part}: {detail}")]
    Missing {
        /// `subject`, `html` or `text`.
        part: &'static str,
        /// The renderer's message.
        detail: String,
    },
    /// Rendering failed otherwise (an operation on values of the wrong kind, a filter
    /// misused, a range too long).
    #[error("{part}: {detail}")]
    Render {
        /// `subject`, `html` or `text`.
        part: &'static str,
        /// The renderer's message.
        detail: String,
    },
    /// Rendering ran into a bound ([`RenderLimits`]): the message is not sent, and a
    /// template that does this with sample data is refused when saved.
    #[error("{part}: {limit}")]
    Limit {
        /// `subject`, `html` or `text`; `message` when the sandbox stopped the whole render.
        part: &'static str,
        /// The bound.
        limit: Limit,
    },
}

/// The variables templates may use: dotted paths, where `root.*` admits any field of
/// `root` (computed traits, whose names the shop defines).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariableCatalog {
    paths: BTreeSet<String>,
}

/// Names minijinja reports as undeclared that are its own global functions.
const GLOBAL_FUNCTIONS: [&str; 4] = ["range", "dict", "namespace", "debug"];

impl VariableCatalog {
    /// A catalog of exactly these paths.
    pub fn new<I: IntoIterator<Item = S>, S: Into<String>>(paths: I) -> Self {
        Self {
            paths: paths.into_iter().map(Into::into).collect(),
        }
    }

    /// What Flywheel fills for every send (the table in docs/channels.md): the profile, its computed traits, the coupon issued by the
    /// step, points and tier, the cart, the shop and the unsubscribe link.
    pub fn standard() -> Self {
        Self::new([
            "profile.id",
            "profile.name",
            "profile.email",
            "profile.phone",
            "profile.gender",
            "profile.region",
            "profile.city",
            "profile.birthday",
            "profile.age_band",
            "traits.*",
            "tags",
            "coupon.code",
            "coupon.name",
            "coupon.value_yuan",
            "coupon.threshold_yuan",
            "coupon.expires_at",
            "points.balance",
            "points.expiring",
            "points.expiring_at",
            "tier.name",
            "tier.next",
            "tier.spend_to_next_yuan",
            "cart.items",
            "cart.total_yuan",
            "cart.url",
            "shop.name",
            "shop.url",
            "links.unsubscribe",
            "links.view_in_browser",
        ])
    }

    /// Whether a dotted path a template uses is one a send fills: listed, under a
    /// `root.*`, or a whole object with listed fields (`{{ coupon }}`).
    pub fn admits(&self, path: &str) -> bool {
        if self.paths.contains(path) || GLOBAL_FUNCTIONS.contains(&path) {
            return true;
        }
        let wildcard = self.paths.iter().any(|p| {
            p.strip_suffix(".*")
                .is_some_and(|root| path == root || path.starts_with(&format!("{root}.")))
        });
        wildcard || {
            let prefix = format!("{path}.");
            self.paths.iter().any(|p| p.starts_with(&prefix))
        }
    }

    /// Whether `path` lies under a `root.*` entry: a value whose names and types the shop
    /// defines (computed traits, trigger event properties), so no sample can stand for it.
    pub fn is_open(&self, path: &str) -> bool {
        self.paths.iter().any(|p| {
            p.strip_suffix(".*")
                .is_some_and(|root| path == root || path.starts_with(&format!("{root}.")))
        })
    }

    /// The listed paths, sorted.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.paths.iter().map(String::as_str)
    }

    fn roots(&self) -> String {
        let roots: BTreeSet<&str> = self
            .paths
            .iter()
            .map(|p| p.split('.').next().unwrap_or(p))
            .collect();
        roots.into_iter().collect::<Vec<_>>().join(", ")
    }
}

/// What a template renders to for one user.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RenderedMessage {
    /// The email subject, when the template has one.
    pub subject: Option<String>,
    /// The email HTML, when the template has one.
    pub html: Option<String>,
    /// The text: SMS/push/WeChat content, or an email's plain-text part.
    pub text: String,
}

/// A template's source parts, as saved: what the render sandbox is sent.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct TemplateSource {
    /// The email subject (push or WeChat title), if any.
    pub subject: Option<String>,
    /// The email HTML, if any.
    pub html: Option<String>,
    /// The text part.
    pub text: String,
}

/// A checked message template, ready to render.
#[derive(Debug)]
pub struct MessageTemplate {
    env: Environment<'static>,
    source: TemplateSource,
    limits: RenderLimits,
}

impl MessageTemplate {
    /// Parses and checks the parts against `catalog`, with the default [`RenderLimits`].
    pub fn compile(
        subject: Option<&str>,
        html: Option<&str>,
        text: &str,
        catalog: &VariableCatalog,
    ) -> Result<Self, TemplateError> {
        let source = TemplateSource {
            subject: subject.map(String::from),
            html: html.map(String::from),
            text: text.to_string(),
        };
        Self::build(source, Some(catalog), RenderLimits::default())
    }

    /// The same template rendering within `limits`.
    pub fn with_limits(mut self, limits: RenderLimits) -> Self {
        self.env.set_fuel(Some(limits.max_steps));
        self.limits = limits;
        self
    }

    /// Tries the template on `sample` (a customer with every fixed catalog field
    /// filled) before it is saved. A limit hit is an error; so is any other failure of a
    /// template that reads no open value ([`VariableCatalog::is_open`]), since then no
    /// customer's data can make it render (`range(100000000)`). A value the sample lacks
    /// ([`TemplateError::Missing`]), or a failure that may come from open values the
    /// sample cannot know, is left to the per-customer render.
    pub fn trial(&self, sample: &serde_json::Value, catalog: &VariableCatalog) -> Result<(), TemplateError> {
        match self.render(sample) {
            Ok(_) | Err(TemplateError::Missing { .. }) => Ok(()),
            Err(TemplateError::Render { .. }) if self.reads_open_values(catalog) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn reads_open_values(&self, catalog: &VariableCatalog) -> bool {
        ["subject", "html", "text"].iter().any(|part| {
            self.env
                .get_template(part)
                .is_ok_and(|t| t.undeclared_variables(true).iter().any(|v| catalog.is_open(v)))
        })
    }

    /// The parts as saved.
    pub fn source(&self) -> &TemplateSource {
        &self.source
    }

    /// The bounds this template renders within.
    pub fn limits(&self) -> RenderLimits {
        self.limits
    }

    /// Parses the parts, checking their variables against `catalog` when given (the
    /// sandbox renders templates the server has already checked).
    pub(crate) fn build(
        source: TemplateSource,
        catalog: Option<&VariableCatalog>,
        limits: RenderLimits,
    ) -> Result<Self, TemplateError> {
        let mut env = Environment::new();
        env.set_fuel(Some(limits.max_steps));
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_auto_escape_callback(|name| {
            if name == "html" {
                AutoEscape::Html
            } else {
                AutoEscape::None
            }
        });
        let parts = [
            ("subject", source.subject.as_deref()),
            ("html", source.html.as_deref()),
            ("text", Some(source.text.as_str())),
        ];
        for (part, text) in parts {
            let Some(text) = text else { continue };
            env.add_template_owned(part, text.to_string())
                .map_err(|e| TemplateError::Syntax {
                    part,
                    detail: e.to_string(),
                })?;
            let template = env.get_template(part).map_err(|e| TemplateError::Syntax {
                part,
                detail: e.to_string(),
            })?;
            let Some(catalog) = catalog else { continue };
            let mut names: Vec<String> = template
                .undeclared_variables(true)
                .into_iter()
                .filter(|v| !catalog.admits(v))
                .collect();
            if !names.is_empty() {
                names.sort();
                return Err(TemplateError::UnknownVariables {
                    part,
                    names,
                    known: catalog.roots(),
                });
            }
        }
        Ok(Self { env, source, limits })
    }

    /// Renders every part with `vars` (a JSON object keyed by catalog roots), in this
    /// thread, within the step and output limits. Time and memory are bounded only by
    /// [`crate::sandbox::Renderer`].
    pub fn render(&self, vars: &serde_json::Value) -> Result<RenderedMessage, TemplateError> {
        Ok(RenderedMessage {
            subject: self
                .source
                .subject
                .is_some()
                .then(|| self.render_part("subject", vars))
                .transpose()?,
            html: self
                .source
                .html
                .is_some()
                .then(|| self.render_part("html", vars))
                .transpose()?,
            text: self.render_part("text", vars)?,
        })
    }

    fn render_part(&self, part: &'static str, vars: &serde_json::Value) -> Result<String, TemplateError> {
        let max = self.limits.max_output_bytes;
        let fail = |e: minijinja::Error| match e.kind() {
            ErrorKind::OutOfFuel => TemplateError::Limit {
                part,
                limit: Limit::Steps(self.limits.max_steps),
            },
            ErrorKind::WriteFailure => TemplateError::Limit {
                part,
                limit: Limit::Output(max),
            },
            ErrorKind::UndefinedError => TemplateError::Missing {
                part,
                detail: e.to_string(),
            },
            _ => TemplateError::Render {
                part,
                detail: e.to_string(),
            },
        };
        let template = self.env.get_template(part).map_err(fail)?;
        let mut out = CappedOutput {
            bytes: Vec::new(),
            max,
        };
        template.render_captured_to(vars, &mut out).map_err(fail)?;
        String::from_utf8(out.bytes).map_err(|e| TemplateError::Render {
            part,
            detail: e.to_string(),
        })
    }
}

/// A render's output that refuses to grow past `max` bytes (minijinja reports the refusal
/// as a write failure, which [`MessageTemplate::render`] turns into [`Limit::Output`]).
struct CappedOutput {
    bytes: Vec<u8>,
    max: usize,
}

impl io::Write for CappedOutput {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.bytes.len().saturating_add(buf.len()) > self.max {
            return Err(io::Error::other("output limit"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn catalog() -> VariableCatalog {
        VariableCatalog::standard()
    }

    #[test]
    fn renders_chinese_text_coupon_and_traits_and_escapes_only_html() {
        let t = MessageTemplate::compile(
            Some("{{ profile.name }}，您的 {{ coupon.value_yuan }} 元券即將過期"),
            Some("<p>{{ profile.name }}</p><a href=\"{{ links.unsubscribe }}\">退訂</a>"),
            "{{ profile.name | default(\"顧客\") }}：券碼 {{ coupon.code }}，近30天消費 {{ traits.spend_30d }} 元，積分 {{ points.balance }}",
            &catalog(),
        )
        .unwrap();
        let vars = json!({
            "profile": {"name": "王<小>明"},
            "coupon": {"code": "FW-8K2Q", "value_yuan": 10},
            "traits": {"spend_30d": "1000.01"},
            "points": {"balance": 320},
            "links": {"unsubscribe": "http://x/u?t=a&b=c"},
        });
        let m = t.render(&vars).unwrap();
        assert_eq!(m.subject.as_deref(), Some("王<小>明，您的 10 元券即將過期"));
        assert_eq!(
            m.html.as_deref(),
            Some("<p>王&lt;小&gt;明</p><a href=\"http:&#x2f;&#x2f;x&#x2f;u?t=a&amp;b=c\">退訂</a>")
        );
        assert_eq!(m.text, "王<小>明：券碼 FW-8K2Q，近30天消費 1000.01 元，積分 320");
    }

    #[test]
    fn unknown_variables_fail_at_save_time_naming_them() {
        let err = MessageTemplate::compile(
            None,
            None,
            "{{ profile.nmae }} {{ cupon.code }} {% for i in cart.items %}{{ i.title }}{% endfor %}",
            &catalog(),
        )
        .unwrap_err();
        match err {
            TemplateError::UnknownVariables { part, names, known } => {
                assert_eq!(part, "text");
                assert_eq!(names, vec!["cupon.code", "profile.nmae"]);
                assert!(known.contains("profile") && known.contains("coupon"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn syntax_errors_fail_at_save_time_with_the_part() {
        let err = MessageTemplate::compile(Some("{{ profile.name "), None, "ok", &catalog()).unwrap_err();
        assert!(
            matches!(err, TemplateError::Syntax { part: "subject", .. }),
            "{err:?}"
        );
    }

    #[test]
    fn a_value_missing_for_this_user_fails_the_render_unless_defaulted() {
        let t = MessageTemplate::compile(None, None, "生日快樂 {{ profile.birthday }}", &catalog()).unwrap();
        let err = t.render(&json!({"profile": {}})).unwrap_err();
        assert!(
            matches!(err, TemplateError::Missing { part: "text", .. }),
            "{err:?}"
        );
        let t = MessageTemplate::compile(
            None,
            None,
            "{% if profile.birthday is defined %}生日 {{ profile.birthday }}{% else %}您好{% endif %}",
            &catalog(),
        )
        .unwrap();
        assert_eq!(t.render(&json!({"profile": {}})).unwrap().text, "您好");
    }

    #[test]
    fn endless_loops_stop_at_the_step_limit() {
        let t = MessageTemplate::compile(
            None,
            None,
            "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
            &catalog(),
        )
        .unwrap();
        let started = std::time::Instant::now();
        let err = t.render(&json!({})).unwrap_err();
        assert_eq!(
            err,
            TemplateError::Limit {
                part: "text",
                limit: Limit::Steps(RenderLimits::default().max_steps)
            }
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        // A loop over a cart is well within the limit.
        let items: Vec<_> = (0..200).map(|i| json!({"title": format!("商品{i}")})).collect();
        let t = MessageTemplate::compile(
            None,
            None,
            "{% for i in cart.items %}{{ loop.index }}. {{ i.title }}\n{% endfor %}",
            &catalog(),
        )
        .unwrap();
        assert!(t.render(&json!({"cart": {"items": items}})).is_ok());
    }

    #[test]
    fn output_past_the_limit_fails_the_part() {
        let t = MessageTemplate::compile(Some("{{ 'x' * 300000 }}"), None, "ok", &catalog()).unwrap();
        assert_eq!(
            t.render(&json!({})).unwrap_err(),
            TemplateError::Limit {
                part: "subject",
                limit: Limit::Output(256 * 1024)
            }
        );
        let small = RenderLimits {
            max_output_bytes: 10,
            ..RenderLimits::default()
        };
        let t = MessageTemplate::compile(None, None, "{{ profile.name }}", &catalog())
            .unwrap()
            .with_limits(small);
        assert_eq!(
            t.render(&json!({"profile": {"name": "王小明"}})).unwrap().text,
            "王小明"
        );
        assert!(matches!(
            t.render(&json!({"profile": {"name": "王小明王小明"}})),
            Err(TemplateError::Limit {
                limit: Limit::Output(10),
                ..
            })
        ));
    }

    #[test]
    fn every_standard_variable_is_documented() {
        let doc = include_str!("../../../docs/channels.md");
        for path in catalog().paths() {
            assert!(
                doc.contains(&format!("`{path}`")),
                "docs/channels.md lacks `{path}`"
            );
        }
    }

    #[test]
    fn catalog_admits_listed_paths_wildcards_and_whole_objects() {
        let c = catalog();
        assert!(c.admits("profile.name"));
        assert!(c.admits("traits.anything_the_shop_defines"));
        assert!(c.admits("coupon"));
        assert!(c.admits("range"));
        assert!(!c.admits("profile.password"));
        assert!(!c.admits("traitsx.a"));
        let custom = VariableCatalog::new(["order.id"]);
        assert!(custom.admits("order.id") && !custom.admits("profile.name"));
    }
}
