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

use std::collections::BTreeSet;

use minijinja::{AutoEscape, Environment, UndefinedBehavior};

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
    /// Rendering failed for this user (a value missing without a `default`).
    #[error("{part}: {detail}")]
    Render {
        /// `subject`, `html` or `text`.
        part: &'static str,
        /// The renderer's message.
        detail: String,
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedMessage {
    /// The email subject, when the template has one.
    pub subject: Option<String>,
    /// The email HTML, when the template has one.
    pub html: Option<String>,
    /// The text: SMS/push/WeChat content, or an email's plain-text part.
    pub text: String,
}

/// A checked message template, ready to render.
#[derive(Debug)]
pub struct MessageTemplate {
    env: Environment<'static>,
    has_subject: bool,
    has_html: bool,
}

impl MessageTemplate {
    /// Parses and checks the parts against `catalog`.
    pub fn compile(
        subject: Option<&str>,
        html: Option<&str>,
        text: &str,
        catalog: &VariableCatalog,
    ) -> Result<Self, TemplateError> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_auto_escape_callback(|name| {
            if name == "html" {
                AutoEscape::Html
            } else {
                AutoEscape::None
            }
        });
        let parts = [("subject", subject), ("html", html), ("text", Some(text))];
        for (part, source) in parts {
            let Some(source) = source else { continue };
            env.add_template_owned(part, source.to_string())
                .map_err(|e| TemplateError::Syntax {
                    part,
                    detail: e.to_string(),
                })?;
            let template = env.get_template(part).map_err(|e| TemplateError::Syntax {
                part,
                detail: e.to_string(),
            })?;
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
        Ok(Self {
            env,
            has_subject: subject.is_some(),
            has_html: html.is_some(),
        })
    }

    /// Renders every part with `vars` (a JSON object keyed by catalog roots).
    pub fn render(&self, vars: &serde_json::Value) -> Result<RenderedMessage, TemplateError> {
        let render = |part: &'static str| -> Result<String, TemplateError> {
            let fail = |e: minijinja::Error| TemplateError::Render {
                part,
                detail: e.to_string(),
            };
            self.env
                .get_template(part)
                .map_err(fail)?
                .render(vars)
                .map_err(fail)
        };
        Ok(RenderedMessage {
            subject: self.has_subject.then(|| render("subject")).transpose()?,
            html: self.has_html.then(|| render("html")).transpose()?,
            text: render("text")?,
        })
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
            matches!(err, TemplateError::Render { part: "text", .. }),
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
