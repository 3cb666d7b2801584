//! `vsmmu replay FILE`: a guest trace (register accesses, guest memory,
//! device DMA) against the vSMMU on the testbed; prints what the guest
//! observes, one JSON object per line.

use serde_json::Value;
use vsmmu_testbed::Machine;

/// A number written as a JSON integer or a string ("0x1f", "31").
fn num(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => {
            let t = s.trim().replace('_', "");
            match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
                Some(h) => u64::from_str_radix(h, 16).ok(),
                None => t.parse().ok(),
            }
        }
        _ => None,
    }
}

fn hex_bytes(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
        .collect()
}

fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// One parsed operation.
enum Op {
    Write { offset: u32, size: u32, value: u64 },
    Read { offset: u32, size: u32 },
    MemWrite { addr: u64, data: Vec<u8> },
    MemRead { addr: u64, len: usize },
    DmaRead { vsid: u32, iova: u64, len: usize },
    DmaWrite { vsid: u32, iova: u64, data: Vec<u8> },
}

fn field<'a>(op: &'a Value, key: &str) -> Result<&'a Value, String> {
    op.get(key).ok_or_else(|| format!("missing `{key}`"))
}

fn number(op: &Value, key: &str) -> Result<u64, String> {
    num(field(op, key)?).ok_or_else(|| format!("`{key}` is not a number"))
}

fn bytes(op: &Value, key: &str) -> Result<Vec<u8>, String> {
    field(op, key)?
        .as_str()
        .and_then(hex_bytes)
        .ok_or_else(|| format!("`{key}` is not a string of hex bytes"))
}

fn parse_op(op: &Value, ram: (u64, u64), vsids: &[u32]) -> Result<Op, String> {
    let kind = field(op, "op")?.as_str().ok_or("`op` is not a string")?;
    let offset = || -> Result<u32, String> {
        let o = number(op, "offset")?;
        u32::try_from(o)
            .ok()
            .filter(|o| *o < smmuv3::FRAME_SIZE)
            .ok_or_else(|| format!("offset {o:#x} is outside the 128 KiB frame"))
    };
    let in_ram = |addr: u64, len: usize| -> Result<u64, String> {
        let end = addr.checked_add(len as u64);
        match end {
            Some(end) if addr >= ram.0 && end <= ram.0 + ram.1 => Ok(addr),
            _ => Err(format!("addr {addr:#x} (+{len}) is outside ram")),
        }
    };
    let device = || -> Result<u32, String> {
        let v = number(op, "vsid")?;
        u32::try_from(v)
            .ok()
            .filter(|v| vsids.contains(v))
            .ok_or_else(|| format!("vsid {v} is not a device"))
    };
    let dma_len = |len: u64| -> Result<usize, String> {
        usize::try_from(len)
            .ok()
            .filter(|l| (1..=4096).contains(l))
            .ok_or_else(|| format!("len {len} is not 1 to 4096"))
    };
    Ok(match kind {
        "write32" | "write64" => Op::Write {
            offset: offset()?,
            size: if kind == "write32" { 4 } else { 8 },
            value: number(op, "value")?,
        },
        "read32" | "read64" => Op::Read {
            offset: offset()?,
            size: if kind == "read32" { 4 } else { 8 },
        },
        "mem_write" => {
            let data = bytes(op, "hex")?;
            Op::MemWrite {
                addr: in_ram(number(op, "addr")?, data.len())?,
                data,
            }
        }
        "mem_read" => {
            let len =
                usize::try_from(number(op, "len")?).map_err(|_| "len is too large".to_string())?;
            Op::MemRead {
                addr: in_ram(number(op, "addr")?, len)?,
                len,
            }
        }
        "dma_read" => Op::DmaRead {
            vsid: device()?,
            iova: number(op, "iova")?,
            len: dma_len(number(op, "len")?)?,
        },
        "dma_write" => {
            let data = bytes(op, "hex")?;
            dma_len(data.len() as u64)?;
            Op::DmaWrite {
                vsid: device()?,
                iova: number(op, "iova")?,
                data,
            }
        }
        other => return Err(format!("unknown op `{other}`")),
    })
}

/// The pSID behind a vSID on the testbed.
fn psid_of(vsid: u32) -> u32 {
    0x1000 + vsid
}

pub fn run(args: &[String]) -> Result<(), String> {
    let [path] = args else {
        return Err("replay takes one trace file".into());
    };
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let trace: Value = serde_json::from_str(&text).map_err(|e| format!("{path}: not JSON: {e}"))?;
    let ram = trace.get("ram").ok_or("the trace has no `ram`")?;
    let base =
        num(ram.get("base").ok_or("ram has no `base`")?).ok_or("ram `base` is not a number")?;
    let size =
        num(ram.get("size").ok_or("ram has no `size`")?).ok_or("ram `size` is not a number")?;
    if base % 0x20_0000 != 0
        || size == 0
        || size > 0x4000_0000
        || base.checked_add(size).is_none_or(|e| e > 1 << 40)
    {
        return Err("ram must be 2 MiB aligned, at most 1 GiB, below 2^40".into());
    }
    let vsids: Vec<u32> = match trace.get("devices") {
        None => vec![8],
        Some(Value::Array(ds)) => ds
            .iter()
            .enumerate()
            .map(|(i, d)| {
                d.get("vsid")
                    .and_then(num)
                    .and_then(|v| u32::try_from(v).ok().filter(|v| *v < 0x1_0000))
                    .ok_or_else(|| format!("device {i}: `vsid` is not a StreamID"))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err("`devices` is not a list".into()),
    };
    let ops = trace
        .get("ops")
        .and_then(Value::as_array)
        .ok_or("the trace has no `ops` list")?;
    let parsed: Vec<Op> = ops
        .iter()
        .enumerate()
        .map(|(i, op)| parse_op(op, (base, size), &vsids).map_err(|e| format!("op {i}: {e}")))
        .collect::<Result<_, _>>()?;
    let mut m = Machine::with_guest_ram(base, size, 1);
    let devices: Vec<(u32, u32)> = vsids.iter().map(|v| (*v, psid_of(*v))).collect();
    let mut g = m
        .domain(1, &devices, |_| {})
        .map_err(|e| format!("devices: {e:?}"))?;
    for (i, op) in parsed.into_iter().enumerate() {
        match op {
            Op::Write {
                offset,
                size,
                value,
            } => g.linux.write_raw(offset, size, value),
            Op::Read { offset, size } => {
                let v = g.linux.read_raw(offset, size);
                println!("{{\"i\": {i}, \"value\": \"{v:#x}\"}}");
            }
            Op::MemWrite { addr, data } => g.write_ipa(addr, &data),
            Op::MemRead { addr, len } => println!(
                "{{\"i\": {i}, \"hex\": \"{}\"}}",
                to_hex(&g.read_ipa(addr, len))
            ),
            Op::DmaRead { vsid, iova, len } => match m.dma_read(psid_of(vsid), iova, len) {
                Ok(b) => println!("{{\"i\": {i}, \"ok\": true, \"hex\": \"{}\"}}", to_hex(&b)),
                Err(_) => println!("{{\"i\": {i}, \"ok\": false}}"),
            },
            Op::DmaWrite { vsid, iova, data } => {
                let ok = m.dma_write(psid_of(vsid), iova, &data).is_ok();
                println!("{{\"i\": {i}, \"ok\": {ok}}}");
            }
        }
        // What the hypervisor does between guest steps: deferred work, and
        // physical events routed to the guest's event queue.
        g.linux.run_deferred();
        m.route_events(&mut [&mut g]);
    }
    Ok(())
}
