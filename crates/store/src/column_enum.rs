//! How a status or kind column is typed: one macro declares an enum whose variants are
//! the column's only values, with `as_str()` for writing and `FromStr` for reading that
//! refuses an unknown value as corrupt data (rule: statuses are enums, never strings
//! compared by hand).

/// Declares a column enum: `column_enum! { /// doc  pub enum Name("what") { /// doc Variant = "text", ... } }`.
macro_rules! column_enum {
    (
        $(#[doc = $doc:literal])+
        pub enum $name:ident($what:literal) {
            $( $(#[doc = $vdoc:literal])+ $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[doc = $doc])+
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
        pub enum $name {
            $( $(#[doc = $vdoc])+ #[serde(rename = $text)] $variant, )+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The value as stored.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::Error;
            fn from_str(s: &str) -> $crate::Result<Self> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err($crate::Error::Corrupt(format!("unknown {} {other:?}", $what))),
                }
            }
        }

        impl TryFrom<&str> for $name {
            type Error = $crate::Error;

            fn try_from(s: &str) -> $crate::Result<$name> {
                s.parse()
            }
        }
    };
}

pub(crate) use column_enum;

#[cfg(test)]
mod tests {
    column_enum! {
        /// A test column.
        pub enum Light("light") {
            /// Stop.
            Red = "red",
            /// Go.
            Green = "green",
        }
    }

    #[test]
    fn values_round_trip_and_unknown_ones_are_corrupt() {
        for l in Light::ALL {
            assert_eq!(l.as_str().parse::<Light>().unwrap(), *l);
            assert_eq!(serde_json::to_value(l).unwrap(), serde_json::json!(l.as_str()));
        }
        let e = "amber".parse::<Light>().unwrap_err();
        assert!(matches!(e, crate::Error::Corrupt(_)), "{e}");
        assert!(e.to_string().contains("unknown light \"amber\""), "{e}");
    }

    /// Every column enum of the store: each value reads back as itself, as text and JSON.
    #[test]
    fn every_stored_value_reads_back() {
        macro_rules! round_trip {
            ($($t:ty),+) => {$(
                for v in <$t>::ALL {
                    assert_eq!(v.as_str().parse::<$t>().unwrap(), *v);
                    assert_eq!(v.to_string(), v.as_str());
                    let json = serde_json::to_value(v).unwrap();
                    assert_eq!(serde_json::from_value::<$t>(json).unwrap(), *v);
                }
                assert!("".parse::<$t>().is_err());
            )+};
        }
        round_trip!(
            crate::coupons::CouponRowState,
            crate::coupons::CouponAction,
            crate::flash::FlashOrderState,
            crate::groups::GroupState,
            crate::referrals::ReferralState,
            crate::loyalty::EntryKind,
            crate::loyalty::EntrySource
        );
    }
}
