//! Anti-replay windows: each nonce applies once, late nonces inside the
//! window still apply, and the state survives a checkpoint byte for byte.

use std::collections::BTreeSet;

use logkv_runtime::nonce::{NonceStateError, NonceWindow, Replayed, NONCE_WINDOW};
use proptest::prelude::*;

#[test]
fn nonces_in_order_all_apply_once() {
    let mut w = NonceWindow::new();
    for n in 0..3 * NONCE_WINDOW {
        assert_eq!(w.check_and_record(n), Ok(()), "nonce {n}");
    }
    assert_eq!(w.highest(), 3 * NONCE_WINDOW - 1);
    assert_eq!(
        w.check_and_record(3 * NONCE_WINDOW - 1),
        Err(Replayed::Duplicate { nonce: 3 * NONCE_WINDOW - 1 })
    );
}

#[test]
fn nonce_zero_is_usable_once_in_a_new_window() {
    let mut w = NonceWindow::new();
    assert_eq!(w.check_and_record(0), Ok(()));
    assert_eq!(w.check_and_record(0), Err(Replayed::Duplicate { nonce: 0 }));
}

#[test]
fn late_nonces_inside_the_window_apply_once() {
    let mut w = NonceWindow::new();
    assert_eq!(w.check_and_record(100), Ok(()));
    for n in (0..100).rev() {
        assert_eq!(w.check_and_record(n), Ok(()), "nonce {n}");
    }
    for n in 0..=100 {
        assert_eq!(w.check_and_record(n), Err(Replayed::Duplicate { nonce: n }));
    }
    assert_eq!(w.check_and_record(101), Ok(()));
}

#[test]
fn nonces_a_window_below_the_highest_are_refused_as_too_old() {
    let mut w = NonceWindow::new();
    assert_eq!(w.check_and_record(5000), Ok(()));
    let oldest_allowed = 5000 - (NONCE_WINDOW - 1);
    assert_eq!(
        w.check_and_record(oldest_allowed - 1),
        Err(Replayed::BelowWindow { nonce: oldest_allowed - 1, highest: 5000 })
    );
    assert_eq!(w.check_and_record(oldest_allowed), Ok(()));
    assert_eq!(w.check_and_record(0), Err(Replayed::BelowWindow { nonce: 0, highest: 5000 }));
}

#[test]
fn a_refused_nonce_changes_nothing() {
    let mut w = NonceWindow::new();
    w.check_and_record(10).expect("fresh");
    let before = w;
    assert!(w.check_and_record(10).is_err());
    assert_eq!(w, before);
}

#[test]
fn huge_jumps_forget_everything_older_than_the_window() {
    let mut w = NonceWindow::new();
    for n in [1, 2, 3] {
        w.check_and_record(n).expect("fresh");
    }
    let far = 1 << 40;
    assert_eq!(w.check_and_record(far), Ok(()));
    assert_eq!(w.check_and_record(3), Err(Replayed::BelowWindow { nonce: 3, highest: far }));
    assert_eq!(w.check_and_record(far - 1), Ok(()), "the new window starts empty");
    // A jump of one less than the window keeps the old nonce; a jump of the
    // window size drops it.
    let mut w = NonceWindow::new();
    w.check_and_record(1).expect("fresh");
    w.check_and_record(1 + NONCE_WINDOW - 1).expect("fresh");
    assert_eq!(w.check_and_record(1), Err(Replayed::Duplicate { nonce: 1 }));
    let mut w = NonceWindow::new();
    w.check_and_record(1).expect("fresh");
    w.check_and_record(1 + NONCE_WINDOW).expect("fresh");
    assert_eq!(w.check_and_record(1), Err(Replayed::BelowWindow { nonce: 1, highest: 1 + NONCE_WINDOW }));
}

#[test]
fn the_largest_nonce_works_and_then_only_the_window_below_it_remains() {
    let mut w = NonceWindow::new();
    assert_eq!(w.check_and_record(u64::MAX), Ok(()));
    assert_eq!(w.check_and_record(u64::MAX), Err(Replayed::Duplicate { nonce: u64::MAX }));
    assert_eq!(w.check_and_record(u64::MAX - (NONCE_WINDOW - 1)), Ok(()));
    assert!(matches!(w.check_and_record(u64::MAX - NONCE_WINDOW), Err(Replayed::BelowWindow { .. })));
}

#[test]
fn state_round_trips_through_encode_and_decode() {
    let mut w = NonceWindow::new();
    assert_eq!(NonceWindow::decode(&w.encode()), Ok(w));
    for n in [3, 70, 64, 200, 1, 1500, 1499, 600] {
        let _ = w.check_and_record(n);
    }
    let bytes = w.encode();
    assert_eq!(&bytes[..2], &[0xdc, 0x0b], "highest first, a varint");
    let mut back = NonceWindow::decode(&bytes).expect("decodes");
    assert_eq!(back, w);
    assert_eq!(back.check_and_record(600), Err(Replayed::Duplicate { nonce: 600 }));
}

#[test]
fn decoding_refuses_malformed_bytes_and_impossible_states() {
    assert_eq!(NonceWindow::decode(&[]), Err(NonceStateError::Malformed("empty")));
    assert_eq!(NonceWindow::decode(&[5, 0x80]), Err(NonceStateError::Malformed("bad varint")));
    assert_eq!(
        NonceWindow::decode(&[5, 0x80, 0x10]),
        Err(NonceStateError::Malformed("runs do not fit the window"))
    );
    assert_eq!(
        NonceWindow::decode(&[5, 1, 0]),
        Err(NonceStateError::Malformed("runs do not fit the window"))
    );
    assert_eq!(NonceWindow::decode(&[5, 1, 2]), Err(NonceStateError::Malformed("ends with unused nonces")));
    // Highest nonce 5 but not marked used: no used nonce, one unused, one used.
    assert_eq!(NonceWindow::decode(&[5, 0, 1, 1]), Err(NonceStateError::Inconsistent { highest: 5 }));
    // Highest 5, with a nonce "below zero" (age 6) marked too.
    assert_eq!(NonceWindow::decode(&[5, 7]), Err(NonceStateError::Inconsistent { highest: 5 }));
    assert!(NonceWindow::decode(&[5, 6]).is_ok(), "age 5 is nonce 0");
}

#[test]
fn a_sender_numbering_in_order_takes_a_few_bytes() {
    let mut w = NonceWindow::new();
    for n in 1..=5000 {
        w.check_and_record(n).unwrap();
        let bytes = w.encode();
        assert!(bytes.len() <= 4, "{n}: {bytes:?}");
        assert_eq!(NonceWindow::decode(&bytes), Ok(w));
    }
}

/// The obvious implementation: every nonce ever used, and the highest.
#[derive(Default)]
struct Model {
    used: BTreeSet<u64>,
}

impl Model {
    fn check_and_record(&mut self, nonce: u64) -> bool {
        let highest = self.used.last().copied().unwrap_or(0);
        if self.used.contains(&nonce) || nonce + NONCE_WINDOW <= highest {
            return false;
        }
        self.used.insert(nonce);
        true
    }
}

fn nonce_steps() -> impl Strategy<Value = Vec<u64>> {
    // Mostly near each other (so the window matters), sometimes far jumps.
    prop::collection::vec(prop_oneof![8 => 0u64..3000, 1 => 0u64..1 << 20], 1..300)
}

proptest! {
    #[test]
    fn window_agrees_with_a_model_that_remembers_every_nonce(steps in nonce_steps()) {
        let mut w = NonceWindow::new();
        let mut model = Model::default();
        for n in steps {
            prop_assert_eq!(w.check_and_record(n).is_ok(), model.check_and_record(n), "nonce {}", n);
            prop_assert_eq!(NonceWindow::decode(&w.encode()), Ok(w));
        }
    }
}
