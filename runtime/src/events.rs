//! Physical event records -> what the guest's stage-1-only SMMU would have
//! recorded. The StreamID becomes the vSID; stage-2 details and physical
//! addresses never reach the guest.

use smmuv3::evt::*;

use crate::stream_table::Refusal;

/// The four translation-fault records share their layout (§7.3.12-7.3.15):
/// the guest's version has the vSID and no stage-2 or stall state.
macro_rules! translation_fault {
    ($variant:ident, $x:expr, $vsid:expr) => {{
        let x = $x;
        let guest = x
            .with_stream_id($vsid)
            .with_ipa(0)
            .with_nsipa(false)
            .with_stall(false)
            .with_stag(0);
        let access = (
            x.ssv(),
            x.substream_id(),
            x.input_addr(),
            x.pn_u(),
            x.in_d(),
            x.rn_w(),
        );
        fault(
            $vsid,
            x.s2(),
            x.class().0,
            x.ipa(),
            Event::$variant(guest),
            access,
        )
    }};
}

/// Where a physical event goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Translated {
    /// Into the guest's event queue, as this record.
    Guest(Event),
    /// A stage-2 fault on the final access: the hypervisor's business; the
    /// guest sees the transaction terminated.
    Stage2Fault,
    /// An event with no place in the guest's view (the hypervisor logs it).
    Host,
}

/// The guest's view of a physical event for `vsid`. `refusal` says why the
/// stream was installed as terminating, if the guest's configuration is why;
/// `recinvsid` is the guest's CR2.RECINVSID (C_BAD_STREAMID is recorded only
/// when it is set, §6.3.12).
pub fn translate(e: Event, vsid: u32, refusal: Option<Refusal>, recinvsid: bool) -> Translated {
    use Translated::*;
    match e {
        // The physical STE is invalid because the guest's was, or because the
        // guest's table has no STE for the vSID: report what the guest did wrong.
        Event::CBadSte(_) => match refusal {
            Some(Refusal::BadSte) => Guest(Event::CBadSte(CBadSte::new().with_stream_id(vsid))),
            Some(Refusal::BadStreamId) if recinvsid => Guest(Event::CBadStreamid(
                CBadStreamid::new().with_stream_id(vsid),
            )),
            Some(Refusal::BadStreamId) => Host,
            Some(Refusal::FetchFault(ipa)) => Guest(Event::FSteFetch(
                FSteFetch::new().with_stream_id(vsid).with_fetch_addr(ipa.0),
            )),
            None => Host,
        },
        Event::FStreamDisabled(x) => Guest(Event::FStreamDisabled(x.with_stream_id(vsid))),
        Event::CBadSubstreamid(x) => Guest(Event::CBadSubstreamid(x.with_stream_id(vsid))),
        Event::CBadCd(x) => Guest(Event::CBadCd(x.with_stream_id(vsid))),
        Event::FTranslation(x) => translation_fault!(FTranslation, x, vsid),
        Event::FAddrSize(x) => translation_fault!(FAddrSize, x, vsid),
        Event::FAccess(x) => translation_fault!(FAccess, x, vsid),
        Event::FPermission(x) => translation_fault!(FPermission, x, vsid),
        // An abort while walking the hypervisor's stage 2 is the hypervisor's.
        Event::FWalkEabt(x) if x.s2() => Host,
        // External aborts on the guest's tables: the fetch address is a PA,
        // which the guest must not learn.
        Event::FWalkEabt(x) => Guest(Event::FWalkEabt(x.with_stream_id(vsid).with_fetch_addr(0))),
        Event::FCdFetch(x) => Guest(Event::FCdFetch(x.with_stream_id(vsid).with_fetch_addr(0))),
        _ => Host,
    }
}

/// The shared fields of a translation fault: SSV, SubstreamID, InputAddr, PnU, InD, RnW.
type Access = (bool, u32, u64, bool, bool, bool);

/// A translation fault: stage-1 faults go to the guest as they are; a stage-2
/// fault on a CD fetch or a stage-1 table walk is, for the guest, a failed
/// access to its own memory at that IPA; a stage-2 fault on the final access
/// stays with the hypervisor.
fn fault(vsid: u32, s2: bool, class: u8, ipa: u64, s1: Event, a: Access) -> Translated {
    let (ssv, ssid, input, pnu, ind, rnw) = a;
    if !s2 {
        return Translated::Guest(s1);
    }
    match FTranslationClass(class) {
        FTranslationClass::CD => Translated::Guest(Event::FCdFetch(
            FCdFetch::new()
                .with_stream_id(vsid)
                .with_ssv(ssv)
                .with_substream_id(ssid)
                .with_fetch_addr(ipa),
        )),
        FTranslationClass::TTD => Translated::Guest(Event::FWalkEabt(
            FWalkEabt::new()
                .with_stream_id(vsid)
                .with_ssv(ssv)
                .with_substream_id(ssid)
                .with_input_addr(input)
                .with_pn_u(pnu)
                .with_in_d(ind)
                .with_rn_w(rnw)
                .with_class(FWalkEabtClass(FTranslationClass::TTD.0))
                .with_fetch_addr(ipa),
        )),
        _ => Translated::Stage2Fault,
    }
}
