//! Typed values (built field by field by `arbitrary`) encode to words that
//! decode back to the same value.
#![no_main]

use smmuv3::cmd::Command;
use smmuv3::evt::Event;
use smmuv3::structs::{Cd, Ste};

libfuzzer_sys::fuzz_target!(|v: (Command, Event, Ste, Cd)| {
    let (c, e, s, d) = v;
    assert_eq!(Command::decode(c.encode()), Ok(c));
    assert_eq!(Event::decode(e.encode()), Ok(e));
    assert_eq!(Ste::decode(s.encode()), Ok(s));
    assert_eq!(Cd::decode(d.encode()), Ok(d));
});
