//! Pure compute of one scan job: decode a few thousand values at a time into a buffer that
//! stays in L1, fold them into the statistics, and hash the stored bytes on the way. The
//! decoded values are never written out to memory as a whole.

use super::{ScanJob, ScanOptions};
use crate::encoding::{self, DecodeError, Encoding, PartRange};
use crate::ggml::types::GgmlType;
use crate::model::{LogicalTensor, Model};
use crate::stats::codes;
use crate::stats::hash::HashAcc;
use crate::stats::histogram::PairCounts;
use crate::stats::rows::RowAcc;
use crate::stats::scales;
use crate::stats::{Moments, PartialStats};

/// Rows shorter than this are summed separately instead of cutting the buffer per row.
const MIN_SEGMENT: u64 = 32;

enum PieceError {
    Decode(DecodeError),
    /// A chunk's byte ranges are not inside the job's ranges (an encoding whose chunks
    /// share bytes): decode the whole job at once instead.
    NotSliceable,
}

impl From<DecodeError> for PieceError {
    fn from(e: DecodeError) -> Self {
        PieceError::Decode(e)
    }
}

/// How values are folded into statistics.
struct Fold {
    row_len: u64,
    /// Only float storage can hold unscaled integer codes; quantized values skip the check.
    check_integers: bool,
}

/// What every piece of a tensor shares.
struct Ctx<'a> {
    t: &'a LogicalTensor,
    job: &'a ScanJob,
    inputs: &'a [&'a [u8]],
    fold: Fold,
    row_stride: u64,
    /// Block type whose scales are counted.
    scale_type: Option<GgmlType>,
    hashable: bool,
    buffer: u64,
    /// Block type whose statistics come from its codes (`stats::codes`) instead of decoded
    /// values.
    codes_type: Option<GgmlType>,
}

/// Statistics of one job from the bytes its `ranges` name (in the same order).
pub fn process(
    model: &Model,
    job: &ScanJob,
    inputs: &[&[u8]],
    options: &ScanOptions,
) -> Result<PartialStats, DecodeError> {
    let t = model.tensors.get(job.tensor).ok_or_else(|| {
        DecodeError::Invalid(format!(
            "scan job names tensor {} of {}",
            job.tensor,
            model.tensors.len()
        ))
    })?;
    if inputs.len() != job.ranges.len() {
        return Err(DecodeError::Invalid(format!(
            "{}: scan job needs {} byte ranges, got {}",
            t.name,
            job.ranges.len(),
            inputs.len()
        )));
    }
    for (r, i) in job.ranges.iter().zip(inputs) {
        if r.len != i.len() as u64 {
            return Err(DecodeError::Invalid(format!(
                "{}: byte range {}+{} of part {} came with {} bytes",
                t.name,
                r.offset,
                r.len,
                r.part,
                i.len()
            )));
        }
    }
    let granule = encoding::granule(t)?;
    let row_len = t.row_len();
    let rows = t.n_elements().checked_div(row_len).unwrap_or(0);
    let ggml_type = match t.encoding {
        Encoding::Ggml { ggml_type } => Some(ggml_type),
        _ => None,
    };
    let check_integers = !t.encoding.is_quantized();
    // The code path works on whole blocks, one row at a time: rows (and so every chunk and
    // segment boundary) must fall on block boundaries.
    let codes_type = ggml_type.filter(|&ty| {
        options.from_codes
            && codes::supported(ty)
            && row_len > 0
            && row_len.is_multiple_of(ty.block_size())
            && t.n_elements().is_multiple_of(row_len)
    });
    let ctx = Ctx {
        t,
        job,
        inputs,
        fold: Fold {
            row_len,
            check_integers,
        },
        row_stride: RowAcc::stride_for(rows, options.max_row_samples),
        scale_type: ggml_type.filter(|&ty| scales::has_scales(ty)),
        hashable: matches!(t.encoding, Encoding::Ggml { .. } | Encoding::Dense { .. }),
        buffer: (options.buffer_elements / granule).max(1) * granule,
        codes_type,
    };

    let piece = (options.piece_elements / granule).max(1) * granule;
    let end = job.start + job.count;
    let starts: Vec<u64> = (0..job.count.div_ceil(piece))
        .map(|i| job.start + i * piece)
        .collect();
    let run = |&s: &u64| process_piece(&ctx, s, piece.min(end - s));
    #[cfg(feature = "parallel")]
    let results: Vec<Result<PartialStats, PieceError>> = {
        use rayon::prelude::*;
        starts.par_iter().map(run).collect()
    };
    #[cfg(not(feature = "parallel"))]
    let results: Vec<Result<PartialStats, PieceError>> = starts.iter().map(run).collect();

    let mut acc: Option<PartialStats> = None;
    for r in results {
        let p = match r {
            Ok(p) => p,
            Err(PieceError::Decode(e)) => return Err(e),
            Err(PieceError::NotSliceable) => return process_whole(&ctx),
        };
        match &mut acc {
            None => acc = Some(p),
            Some(a) => a.merge(p).map_err(DecodeError::Invalid)?,
        }
    }
    Ok(acc.unwrap_or_else(|| {
        PartialStats::empty(job.start, ctx.row_stride, ctx.scale_type.is_some())
    }))
}

/// The bytes of the job's inputs that sub-range `r` names, when the job holds them.
fn slice_of<'a>(job: &ScanJob, inputs: &[&'a [u8]], r: &PartRange) -> Option<&'a [u8]> {
    job.ranges.iter().zip(inputs).find_map(|(jr, &bytes)| {
        let inside =
            jr.part == r.part && jr.offset <= r.offset && r.offset + r.len <= jr.offset + jr.len;
        inside.then(|| {
            let from = (r.offset - jr.offset) as usize;
            &bytes[from..from + r.len as usize]
        })
    })
}

fn process_piece(ctx: &Ctx<'_>, start: u64, count: u64) -> Result<PartialStats, PieceError> {
    let mut p = PartialStats::empty(start, ctx.row_stride, ctx.scale_type.is_some());
    let window = ctx.buffer.min(count) as usize;
    // The code path needs no decoded values.
    let mut buf = vec![0f32; if ctx.codes_type.is_some() { 0 } else { window }];
    let mut bins = vec![0u8; window];
    let mut pairs = PairCounts::default();
    let mut slices: Vec<&[u8]> = Vec::with_capacity(ctx.job.ranges.len());
    let mut hash: Option<HashAcc> = None;
    let mut hash_ok = ctx.hashable;
    let end = start + count;
    let mut s = start;
    while s < end {
        let c = ctx.buffer.min(end - s);
        let sub = encoding::plan(ctx.t, s, c)?;
        slices.clear();
        for r in &sub {
            slices.push(slice_of(ctx.job, ctx.inputs, r).ok_or(PieceError::NotSliceable)?);
        }
        let mut next = NextChunk::default();
        if let Some(i) = sub.iter().position(|r| r.part == 0) {
            let (r, bytes) = (&sub[i], slices[i]);
            next = NextChunk::after(bytes);
            next.prefetch_part();
            if let (Some(ty), Some(acc)) = (ctx.scale_type, &mut p.scales) {
                acc.add_blocks(ty, bytes, r.offset / ty.type_size());
            }
            if hash_ok {
                let h = HashAcc::of(r.offset, bytes);
                hash = match hash {
                    None => Some(h),
                    Some(prev) => prev.merge(h),
                };
                hash_ok = hash.is_some();
            }
            next.prefetch_part();
        }
        match ctx.codes_type {
            Some(ty) => {
                let bins = &mut bins[..c as usize];
                add_codes(&mut p, ty, slices[0], s, ctx.fold.row_len, bins);
                next.prefetch_part();
                next.prefetch_part();
                pairs.add_bins(bins, &mut p.hist);
            }
            None => {
                let out = &mut buf[..c as usize];
                encoding::decode(ctx.t, s, &slices, out)?;
                next.prefetch_part();
                add_values(&mut p, out, s, &ctx.fold, &mut bins, &mut pairs, &mut next);
            }
        }
        s += c;
    }
    p.hist.add_pairs(&mut pairs);
    p.end = end;
    p.hash = if hash_ok { hash } else { None };
    Ok(p)
}

/// The bytes after a chunk (the next chunk's, in a ggml tensor), brought into the cache a
/// quarter at a time between the passes over this chunk. All at once, the prefetches filled
/// the core's line-fill buffers and stalled it for a memory round trip or more per chunk
/// (9-17 % of the scan's samples, on the prefetch instructions); spread out, they overlap
/// with the passes' compute.
#[derive(Default)]
struct NextChunk {
    start: usize,
    lines: usize,
    parts_done: usize,
}

impl NextChunk {
    const PARTS: usize = 4;

    fn after(bytes: &[u8]) -> NextChunk {
        NextChunk {
            start: bytes.as_ptr() as usize + bytes.len(),
            lines: bytes.len().div_ceil(64),
            parts_done: 0,
        }
    }

    /// Prefetch the next quarter (nothing once all four are asked for).
    #[inline]
    fn prefetch_part(&mut self) {
        let part = self.parts_done;
        if part >= Self::PARTS {
            return;
        }
        self.parts_done += 1;
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            let from = self.lines * part / Self::PARTS;
            let to = self.lines * (part + 1) / Self::PARTS;
            for line in from..to {
                // SAFETY: a prefetch never faults, whatever the address; the address is
                // only computed, never dereferenced.
                unsafe {
                    _mm_prefetch::<_MM_HINT_T0>(self.start.wrapping_add(64 * line) as *const i8)
                };
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (self.start, self.lines);
    }
}

/// Fallback for encodings whose chunks cannot be cut out of the job's bytes: decode the
/// job in one go (bounded by `job_elements`), then fold it window by window.
fn process_whole(ctx: &Ctx<'_>) -> Result<PartialStats, DecodeError> {
    let job = ctx.job;
    let mut p = PartialStats::empty(job.start, ctx.row_stride, false);
    let mut values = vec![0f32; job.count as usize];
    encoding::decode(ctx.t, job.start, ctx.inputs, &mut values)?;
    let mut bins = vec![0u8; ctx.buffer as usize];
    let mut pairs = PairCounts::default();
    let mut s = job.start;
    for w in values.chunks(ctx.buffer as usize) {
        add_values(
            &mut p,
            w,
            s,
            &ctx.fold,
            &mut bins,
            &mut pairs,
            &mut NextChunk::default(),
        );
        s += w.len() as u64;
    }
    p.hist.add_pairs(&mut pairs);
    p.end = s;
    Ok(p)
}

/// The rows that elements `first..first + len` touch, each with the range (relative to
/// `first`) of its elements among them.
fn row_segments(
    first: u64,
    len: usize,
    row_len: u64,
) -> impl Iterator<Item = (u64, std::ops::Range<usize>)> {
    let mut i = 0usize;
    std::iter::from_fn(move || {
        if row_len == 0 || i >= len {
            return None;
        }
        let row = (first + i as u64) / row_len;
        let end = ((row + 1) * row_len - first).min(len as u64) as usize;
        let seg = i..end;
        i = end;
        Some((row, seg))
    })
}

/// Fold the values of elements `first..first + bins.len()` of a block type with a code path
/// straight from their stored blocks `bytes` (`Ctx::codes_type` guarantees whole blocks and
/// rows made of whole blocks), writing each value's histogram bin to `bins`.
fn add_codes(
    p: &mut PartialStats,
    ty: GgmlType,
    bytes: &[u8],
    first: u64,
    row_len: u64,
    bins: &mut [u8],
) {
    let (bs, ts) = (ty.block_size() as usize, ty.type_size() as usize);
    for (row, seg) in row_segments(first, bins.len(), row_len) {
        let blocks = &bytes[seg.start / bs * ts..seg.end / bs * ts];
        let m = codes::moments(ty, blocks, &mut bins[seg]);
        p.moments.merge(&m);
        p.rows.add(row, m.sum_sq());
    }
}

/// Fold decoded values `xs` (elements `first..`) into `p`. `bins` is scratch of at least
/// `xs.len()` bytes; the last part of `next` is prefetched before the histogram pass.
fn add_values(
    p: &mut PartialStats,
    xs: &[f32],
    first: u64,
    fold: &Fold,
    bins: &mut [u8],
    pairs: &mut PairCounts,
    next: &mut NextChunk,
) {
    let bins = &mut bins[..xs.len()];
    let row_len = fold.row_len;
    if row_len >= MIN_SEGMENT {
        // One slice per row piece: its moments give the row's sum of squares for free.
        for (row, seg) in row_segments(first, xs.len(), row_len) {
            let m = Moments::scan(&xs[seg.clone()], fold.check_integers, &mut bins[seg]);
            p.moments.merge(&m);
            p.rows.add(row, m.sum_sq());
        }
    } else {
        p.moments
            .merge(&Moments::scan(xs, fold.check_integers, bins));
        for (row, seg) in row_segments(first, xs.len(), row_len) {
            if p.rows.is_sampled(row) {
                let s: f64 = xs[seg]
                    .iter()
                    .filter(|x| x.is_finite())
                    .map(|&x| x as f64 * x as f64)
                    .sum();
                p.rows.add(row, s);
            }
        }
    }
    next.prefetch_part();
    pairs.add_bins(bins, &mut p.hist);
}
