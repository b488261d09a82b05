//! Which helm majors run a scenario: both for what exercises helm's own behaviour (its records,
//! its signals, its output), one for what exercises the tool's checks or the cluster.

/// One test per helm major: `both_helms!(name)` runs `fn name(helm: Helm)` as `name::helm3` and
/// `name::helm4`.
#[macro_export]
macro_rules! both_helms {
    ($($name:ident),* $(,)?) => {
        $(mod $name {
            #[test]
            fn helm3() {
                super::$name($crate::deploy::Helm::V3)
            }
            #[test]
            fn helm4() {
                super::$name($crate::deploy::Helm::V4)
            }
        })*
    };
}

/// One test on one helm major: `one_helm!(name: V3, other: V4)` runs `fn name(helm: Helm)` as
/// `name::helm3` and `other` as `other::helm4`. For scenarios whose outcome helm does not decide;
/// the majors alternate so that each still runs under both.
#[macro_export]
macro_rules! one_helm {
    () => {};
    ($name:ident: V3 $(, $($rest:tt)*)?) => {
        mod $name {
            #[test]
            fn helm3() {
                super::$name($crate::deploy::Helm::V3)
            }
        }
        $($crate::one_helm!($($rest)*);)?
    };
    ($name:ident: V4 $(, $($rest:tt)*)?) => {
        mod $name {
            #[test]
            fn helm4() {
                super::$name($crate::deploy::Helm::V4)
            }
        }
        $($crate::one_helm!($($rest)*);)?
    };
}
