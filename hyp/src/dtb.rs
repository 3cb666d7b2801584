//! The guest's device tree: QEMU's, copied node by node with the
//! hypervisor's 2 MiB reserved (`/reserved-memory`, `no-map`: Linux neither
//! maps nor allocates it, and a guest touching it anyway gets an abort from
//! stage 2) and the initramfs announced in `/chosen`.

use alloc::vec::Vec;
use fdt::node::FdtNode;
use fdt::Fdt;
use vm_fdt::{FdtWriter, FdtWriterNode};

use crate::layout;

#[derive(Debug)]
pub enum DtbError {
    /// No FDT magic at the RAM base.
    Missing,
    Parse,
    Write,
    TooLarge,
}

impl From<vm_fdt::Error> for DtbError {
    fn from(_: vm_fdt::Error) -> Self {
        DtbError::Write
    }
}

/// What the rewrite adds.
#[derive(Clone, Copy, Debug)]
pub struct Additions {
    pub initrd: Option<(u64, u64)>,
    /// Added to the StreamIDs of every `iommu-map` (the vSIDs).
    pub vsid_offset: u32,
}

/// QEMU's tree at the RAM base (`x0` is 0 at ELF entry: look for the magic).
pub fn original() -> Result<Fdt<'static>, DtbError> {
    // SAFETY: the DTB ROM blob is 1 MiB of RAM at the base, mapped at EL2;
    // `from_ptr` reads the header and bounds everything by `totalsize`.
    unsafe { Fdt::from_ptr(layout::DTB_BASE as *const u8) }.map_err(|_| DtbError::Missing)
}

/// Builds the guest's tree and writes it over QEMU's; returns its size.
pub fn rewrite(add: &Additions) -> Result<usize, DtbError> {
    let fdt = original()?;
    let blob = build(&fdt, add)?;
    if blob.len() > layout::DTB_MAX {
        return Err(DtbError::TooLarge);
    }
    // SAFETY: the 1 MiB at the RAM base is the DTB's, which `fdt` no longer
    // borrows (the new tree is in `blob`).
    unsafe {
        core::ptr::copy_nonoverlapping(blob.as_ptr(), layout::DTB_BASE as *mut u8, blob.len());
    }
    Ok(blob.len())
}

fn build(fdt: &Fdt<'_>, add: &Additions) -> Result<Vec<u8>, DtbError> {
    let reservations: Vec<_> = fdt
        .memory_reservations()
        .filter_map(|r| vm_fdt::FdtReserveEntry::new(r.address() as u64, r.size() as u64).ok())
        .collect();
    let mut w = FdtWriter::new_with_mem_reserv(&reservations)?;
    let root = fdt.find_node("/").ok_or(DtbError::Parse)?;
    copy(&mut w, root, 0, add)?;
    Ok(w.finish()?)
}

/// Copies `node` (at `depth`, 0 for the root) and what the rewrite adds to it.
fn copy(
    w: &mut FdtWriter,
    node: FdtNode<'_, '_>,
    depth: u32,
    add: &Additions,
) -> Result<(), DtbError> {
    // The root's name is empty in the blob; `fdt` calls it "/".
    let handle: FdtWriterNode = w.begin_node(if depth == 0 { "" } else { node.name })?;
    for p in node.properties() {
        if p.name == "iommu-map" {
            w.property("iommu-map", &offset_iommu_map(p.value, add.vsid_offset))?;
        } else {
            w.property(p.name, p.value)?;
        }
    }
    let mut has_reserved = false;
    for child in node.children() {
        has_reserved |= depth == 0 && child.name == "reserved-memory";
        copy(w, child, depth + 1, add)?;
    }
    match (depth, node.name) {
        (0, _) if !has_reserved => {
            let rm = w.begin_node("reserved-memory")?;
            reserved_memory_header(w)?;
            hypervisor_region(w)?;
            w.end_node(rm)?;
        }
        (1, "reserved-memory") => hypervisor_region(w)?,
        (1, "chosen") => chosen_additions(w, add)?,
        _ => {}
    }
    w.end_node(handle)?;
    Ok(())
}

fn reserved_memory_header(w: &mut FdtWriter) -> Result<(), DtbError> {
    w.property_u32("#address-cells", 2)?;
    w.property_u32("#size-cells", 2)?;
    w.property_null("ranges")?;
    Ok(())
}

fn hypervisor_region(w: &mut FdtWriter) -> Result<(), DtbError> {
    let n = w.begin_node("vsmmu-hyp@7fe00000")?;
    w.property_array_u64("reg", &[layout::HYP_BASE, layout::HYP_SIZE])?;
    w.property_null("no-map")?;
    w.end_node(n)?;
    Ok(())
}

fn chosen_additions(w: &mut FdtWriter, add: &Additions) -> Result<(), DtbError> {
    if let Some((start, end)) = add.initrd {
        w.property_u64("linux,initrd-start", start)?;
        w.property_u64("linux,initrd-end", end)?;
    }
    Ok(())
}

/// A PCIe `iommu-map` (rid-base, iommu phandle, sid-base, length cells)
/// with the StreamIDs moved by `offset`: the guest's StreamIDs are vSIDs,
/// which the vSMMU's stream map turns back into RIDs.
fn offset_iommu_map(value: &[u8], offset: u32) -> Vec<u8> {
    let mut out = value.to_vec();
    for entry in out.chunks_exact_mut(16) {
        let Some(sid) = entry.get_mut(8..12) else {
            continue;
        };
        let base = u32::from_be_bytes([sid[0], sid[1], sid[2], sid[3]]);
        sid.copy_from_slice(&base.wrapping_add(offset).to_be_bytes());
    }
    out
}

/// The vSMMU's interrupts, as the SMMU node names them (3-cell GIC
/// specifiers: SPI number n is INTID 32 + n).
pub fn smmu_spis(fdt: &Fdt<'_>) -> crate::vsmmu_port::Spis {
    let mut spis = crate::vsmmu_port::Spis::default();
    let Some(node) = fdt.find_compatible(&["arm,smmu-v3"]) else {
        return spis;
    };
    let (Some(names), Some(ints)) = (
        node.property("interrupt-names"),
        node.property("interrupts"),
    ) else {
        return spis;
    };
    let names = names.value.split(|b| *b == 0).filter(|n| !n.is_empty());
    for (name, cells) in names.zip(ints.value.chunks_exact(12)) {
        let cell = |i: usize| {
            cells
                .get(i * 4..i * 4 + 4)
                .map_or(0, |c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
        };
        if cell(0) != 0 {
            continue; // not an SPI
        }
        let intid = Some(32 + cell(1));
        match name {
            b"eventq" => spis.eventq = intid,
            b"priq" => spis.priq = intid,
            b"cmdq-sync" => spis.cmdq_sync = intid,
            b"gerror" => spis.gerror = intid,
            _ => {}
        }
    }
    spis
}
