//! Time is evidence: a payment is made after its contract was signed and not in the future, and
//! is claimed within its policy's claim window. The cap year then follows the payment date
//! (see the calculator): a payment cannot be dated into a year whose cap is still untouched.
//!
//! Every refusal is `INVALID_ARGUMENT` naming `paid_at`: the date the enterprise reported is
//! what is wrong, whichever rule it breaks.

use super::policy::Policy;
use chrono::{DateTime, TimeDelta, Utc};
use kechuang_platform::Error;

/// How far into the future a time may lie: the reporter's clock and ours disagree a little.
pub const CLOCK_SKEW: TimeDelta = TimeDelta::minutes(5);

fn at(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A payment lies between its contract's signing and now (give or take [`CLOCK_SKEW`]).
pub fn check_paid_at(
    paid_at: DateTime<Utc>,
    signed_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    if paid_at > now + CLOCK_SKEW {
        return Err(Error::invalid("paid_at", "must not be in the future"));
    }
    if paid_at < signed_at {
        return Err(Error::invalid(
            "paid_at",
            format!("is before the contract was signed ({})", at(signed_at)),
        ));
    }
    Ok(())
}

/// A payment is claimed within `policy.claim_window_days` of being made.
pub fn check_claim_window(
    paid_at: DateTime<Utc>,
    now: DateTime<Utc>,
    policy: &Policy,
) -> Result<(), Error> {
    let window = TimeDelta::days(i64::from(policy.claim_window_days.max(1)));
    if paid_at < now - window {
        return Err(Error::invalid(
            "paid_at",
            format!(
                "is older than the claim window of {} ({} days): payments made before {} can no longer be claimed",
                policy.name,
                policy.claim_window_days,
                at(now - window)
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::policy::tests::hubei_policy;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn field(r: Result<(), Error>) -> String {
        match r {
            Err(Error::InvalidArgument(v)) => v[0].field.clone(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_payment_lies_between_the_signing_and_now() {
        let now = Utc.with_ymd_and_hms(2026, 12, 6, 4, 0, 0).unwrap();
        let signed = now - TimeDelta::days(30);
        assert!(check_paid_at(signed, signed, now).is_ok());
        assert!(check_paid_at(now + CLOCK_SKEW, signed, now).is_ok());
        for bad in [
            signed - TimeDelta::microseconds(1),
            signed - TimeDelta::days(1),
            Utc.with_ymd_and_hms(1, 1, 1, 0, 0, 0).unwrap(),
            now + CLOCK_SKEW + TimeDelta::seconds(1),
        ] {
            assert_eq!(field(check_paid_at(bad, signed, now)), "paid_at", "{bad}");
        }
    }

    #[test]
    fn a_claim_is_made_within_the_policys_window() {
        let now = Utc.with_ymd_and_hms(2026, 12, 6, 4, 0, 0).unwrap();
        let mut p = hubei_policy();
        assert_eq!(p.claim_window_days, 365);
        assert!(check_claim_window(now - TimeDelta::days(365), now, &p).is_ok());
        let late = check_claim_window(now - TimeDelta::days(366), now, &p);
        assert_eq!(field(late), "paid_at");
        p.claim_window_days = 30;
        assert!(check_claim_window(now - TimeDelta::days(31), now, &p).is_err());
        assert!(check_claim_window(now - TimeDelta::days(29), now, &p).is_ok());
    }

    proptest! {
        /// A payment passes both rules exactly when it lies in
        /// [max(signed, now − window), now + skew].
        #[test]
        fn payments_pass_exactly_inside_their_window(
            signed_ago in 0i64..4_000,
            paid_ago in -2i64..4_000,
            window in 1i32..=3650,
        ) {
            let now = Utc.with_ymd_and_hms(2026, 12, 6, 4, 0, 0).unwrap();
            let mut p = hubei_policy();
            p.claim_window_days = window;
            let signed = now - TimeDelta::days(signed_ago);
            let paid = now - TimeDelta::days(paid_ago);
            let ok = check_paid_at(paid, signed, now).and_then(|()| check_claim_window(paid, now, &p)).is_ok();
            let earliest = signed.max(now - TimeDelta::days(i64::from(window)));
            prop_assert_eq!(ok, paid >= earliest && paid <= now + CLOCK_SKEW);
        }
    }
}
