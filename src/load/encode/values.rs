//! The `value` column chunk of a metrics file, dictionary-encoded without arrow-rs' interner.
//!
//! `value` is the one column besides `ts` that changes every row, and its dictionary (two-decimal
//! values repeat a lot within a row group) is what keeps it small. arrow-rs builds that dictionary
//! with a generic interner that hashes the value's bytes with ahash and compares them through its
//! storage, a large share of the exporter's CPU (docs/measurements.md). Here the values vScope serves, whole numbers of hundredths,
//! are their own key: `m / 100` is key `m + 2^23`, a bit in a bitmap, and a key's index is its
//! rank among the bits set once the chunk is complete. A series keeps to its own range of values,
//! so its lookups stay in a few KiB of the bitmap. Any other double (from the first one on, for
//! the rest of the chunk) is keyed by its 64 bits in an open-addressing table (Fibonacci hashing,
//! linear probing), a multiply and one or two probes a point, but in a table of several MiB that
//! misses the cache, which is why the bitmap comes first.
//!
//! The chunk is what arrow-rs writes for the column: a PLAIN dictionary page, then data pages (v1)
//! of RLE definition levels and RLE_DICTIONARY indices (bit-packed, with RLE runs where a value
//! repeats), pages cut at the writer's row count and size limits, and PLAIN pages for the rest of
//! the chunk once the dictionary passes its size limit. Unlike arrow-rs, a page ends where a
//! series ends (past a few hundred rows) and its indices take the bit width of its own largest
//! one: the dictionary being sorted, a series of small values costs fewer bits a point. NaN is
//! "no value" (null), as everywhere in this exporter. Statistics are the chunk's min, max and
//! null count; an offset index lists the pages.

use bytes::Bytes;
use parquet::basic::{Encoding, Type as PhysicalType};
use parquet::column::writer::ColumnCloseResult;
use parquet::errors::{ParquetError, Result};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::statistics::Statistics;
use parquet::schema::types::ColumnDescPtr;

use crate::points::cents::{self, Held, ValuesSlice};

use super::{
    assemble_chunk, bit_width, double_statistics, pack, put_run, put_uleb128, ChunkPage, Runs,
};

/// Entry index of an empty slot.
const EMPTY: u32 = u32::MAX;

/// How far ahead of the value being looked up its successor's slot is fetched into the cache: a
/// row group's table (a few MiB) does not fit in the cache, and the lookups are independent.
const PREFETCH_AHEAD: usize = 8;

/// A page holding at least this many rows ends where a series ends, so that each series' indices
/// get a bit width of their own: with the dictionary sorted, a series of small values (a
/// percentage, a latency) indexes only its low end. A page costs some 50 bytes (header, ZSTD
/// frame, offset index entry), which a saving of one bit a row pays back past 400 rows.
const MIN_SERIES_PAGE_ROWS: usize = 512;

/// One slot of the hash table: the key beside its index, so that a lookup touches one cache line.
#[derive(Debug, Clone, Copy)]
struct Slot {
    bits: u64,
    index: u32,
}

const FREE: Slot = Slot {
    bits: 0,
    index: EMPTY,
};

/// The distinct doubles of a chunk, in order of first appearance, with a hash table over their
/// bits. The table is kept at most half full, so a lookup probes one or two slots.
#[derive(Debug, Default)]
struct Dictionary {
    entries: Vec<u64>,
    /// A power of two long.
    slots: Vec<Slot>,
    /// 64 − log2(slots.len()): the shift that turns a product into a slot.
    shift: u32,
}

impl Dictionary {
    fn with_capacity(entries: usize) -> Dictionary {
        let slots = (entries * 2).next_power_of_two().max(1024);
        Dictionary {
            entries: Vec::with_capacity(entries),
            slots: vec![FREE; slots],
            shift: 64 - slots.trailing_zeros(),
        }
    }

    #[inline]
    fn slot(&self, bits: u64) -> usize {
        // Fibonacci hashing: the high bits of the product depend on every bit of the key.
        (bits.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> self.shift) as usize
    }

    /// Asks the CPU to bring the slot of `bits` into the cache, without waiting for it.
    #[inline]
    #[allow(unsafe_code, reason = "a prefetch hint; see SAFETY below")]
    fn prefetch(&self, bits: u64) {
        #[cfg(target_arch = "x86_64")]
        {
            let at = &self.slots[self.slot(bits)] as *const Slot as *const i8;
            // SAFETY: a prefetch is only a hint: it never faults and changes nothing the program
            // can observe, and `at` points into the live table anyway.
            unsafe { std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(at) };
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = bits;
    }

    /// The index of `bits`, added on first sight.
    #[inline]
    fn intern(&mut self, bits: u64) -> u32 {
        let mask = self.slots.len() - 1;
        let mut s = self.slot(bits);
        loop {
            let slot = self.slots[s];
            if slot.index == EMPTY {
                break;
            }
            if slot.bits == bits {
                return slot.index;
            }
            s = (s + 1) & mask;
        }
        let index = self.entries.len() as u32;
        self.entries.push(bits);
        self.slots[s] = Slot { bits, index };
        if self.entries.len() * 2 > self.slots.len() {
            self.grow();
        }
        index
    }

    fn grow(&mut self) {
        let slots = self.slots.len() * 2;
        self.slots = vec![FREE; slots];
        self.shift = 64 - slots.trailing_zeros();
        let mask = slots - 1;
        for (i, &bits) in self.entries.iter().enumerate() {
            let mut s = self.slot(bits);
            while self.slots[s].index != EMPTY {
                s = (s + 1) & mask;
            }
            self.slots[s] = Slot {
                bits,
                index: i as u32,
            };
        }
    }

    fn clear(&mut self) {
        if !self.entries.is_empty() {
            self.entries.clear();
            self.slots.fill(FREE);
        }
    }
}

/// The dictionary of a chunk whose values are all hundredths ([`cents`]): a bitmap over their
/// keys (2 MiB). A lookup sets one bit near the previous ones (a series keeps to its own range of
/// values), where the hash table's slots are scattered over several MiB and miss the cache. A
/// key's index is its rank among the keys present, counted once the chunk is complete.
#[derive(Debug)]
struct Cents {
    /// One bit a key, set for the keys seen.
    present: Vec<u64>,
    /// Keys set.
    distinct: usize,
}

impl Cents {
    fn new() -> Cents {
        Cents {
            present: vec![0; cents::KEYS / 64],
            distinct: 0,
        }
    }

    #[inline]
    fn insert(&mut self, key: u32) {
        let bit = 1u64 << (key & 63);
        let word = &mut self.present[(key >> 6) as usize];
        self.distinct += usize::from(*word & bit == 0);
        *word |= bit;
    }

    /// The keys present, in order.
    fn keys(&self) -> impl Iterator<Item = u32> + '_ {
        self.present.iter().enumerate().flat_map(|(w, &word)| {
            let mut rest = word;
            std::iter::from_fn(move || {
                (rest != 0).then(|| {
                    let bit = rest.trailing_zeros();
                    rest &= rest - 1;
                    (w as u32) << 6 | bit
                })
            })
        })
    }

    /// Per bitmap word, the keys present before it: with it, [`Cents::rank`] of a key is one
    /// lookup and one population count.
    fn ranks(&self) -> Vec<u32> {
        with_popcnt(|| {
            let mut before = 0u32;
            self.present
                .iter()
                .map(|word| {
                    let at = before;
                    before += word.count_ones();
                    at
                })
                .collect()
        })
    }

    /// The index of a present `key` in the sorted dictionary.
    #[inline]
    fn rank(&self, ranks: &[u32], key: u32) -> u32 {
        let w = (key >> 6) as usize;
        let below = self.present[w] & ((1u64 << (key & 63)) - 1);
        ranks[w] + below.count_ones()
    }

    fn clear(&mut self) {
        if self.distinct > 0 {
            self.present.fill(0);
            self.distinct = 0;
        }
    }
}

/// The chunk's dictionary: [`Cents`] while every value so far is a number of hundredths, the
/// hash table from the first one that is not (the cents seen move over to it in their order).
#[derive(Debug)]
struct Keys {
    in_cents: bool,
    cents: Cents,
    hashed: Dictionary,
}

impl Keys {
    fn distinct(&self) -> usize {
        if self.in_cents {
            self.cents.distinct
        } else {
            self.hashed.entries.len()
        }
    }

    /// The index of the non-null `v` (its cents key, in cents); `pending` and `open` are the
    /// indices given so far, renumbered if the chunk leaves cents here.
    #[inline]
    fn index(&mut self, v: f64, pending: &mut [OpenPage], open: &mut [u32]) -> u32 {
        if self.in_cents {
            if let Some(key) = cents::key(v) {
                self.cents.insert(key);
                return key;
            }
            self.leave_cents(pending, open);
        }
        self.hashed.intern(v.to_bits())
    }

    /// [`Self::index`] of the value whose [`cents::key`] is `key`.
    #[inline]
    fn index_key(&mut self, key: u32, pending: &mut [OpenPage], open: &mut [u32]) -> u32 {
        if self.in_cents {
            self.cents.insert(key);
            return key;
        }
        self.index(cents::value(key), pending, open)
    }

    /// Moves the cents seen to the hash table in their order, so that a key's index there is
    /// its rank, and renumbers the indices given so far.
    #[cold]
    fn leave_cents(&mut self, pending: &mut [OpenPage], open: &mut [u32]) {
        let Keys {
            in_cents,
            cents,
            hashed,
        } = self;
        for key in cents.keys() {
            hashed.intern(cents::value(key).to_bits());
        }
        let ranks = cents.ranks();
        let indices = pending.iter_mut().flat_map(|page| page.indices.iter_mut());
        for index in indices.chain(open.iter_mut()) {
            *index = cents.rank(&ranks, *index);
        }
        cents.clear();
        *in_cents = false;
    }

    /// The entries' bits in the IEEE total order, and the new index of each index given.
    fn sorted(&self) -> (Vec<u64>, Renumber) {
        if self.in_cents {
            let sorted = self
                .cents
                .keys()
                .map(|k| cents::value(k).to_bits())
                .collect();
            return (sorted, Renumber::Ranks(self.cents.ranks()));
        }
        let entries = &self.hashed.entries;
        let mut order: Vec<(u64, u32)> = entries
            .iter()
            .enumerate()
            .map(|(i, &bits)| (total_order_key(bits), i as u32))
            .collect();
        // Keys are distinct (one entry per double), so a stable radix sort is the order.
        radsort::sort_by_key(&mut order, |&(key, _)| key);
        let mut renumber = vec![0u32; entries.len()];
        let mut sorted = Vec::with_capacity(entries.len());
        for (new, &(_, old)) in order.iter().enumerate() {
            renumber[old as usize] = new as u32;
            sorted.push(entries[old as usize]);
        }
        (sorted, Renumber::Table(renumber))
    }

    fn clear(&mut self) {
        self.hashed.clear();
        self.cents.clear();
        self.in_cents = true;
    }
}

/// `f`, compiled with the processor's population count instruction where it has one: x86-64's
/// baseline has none, and counting a word's bits in a dozen instructions instead weighs on the
/// `value` chunk's work (a rank a point; docs/measurements.md).
#[inline]
#[allow(
    unsafe_code,
    reason = "calls a `target_feature` function once the CPU has the feature"
)]
fn with_popcnt<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "popcnt")]
        fn popcnt<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        if std::arch::is_x86_feature_detected!("popcnt") {
            // SAFETY: the processor has the instruction `popcnt` is compiled with.
            return unsafe { popcnt(f) };
        }
    }
    f()
}

/// From the indices given while the chunk was filled to those of the sorted dictionary.
enum Renumber {
    /// Cents keys: their rank.
    Ranks(Vec<u32>),
    /// Hash table indices: by table.
    Table(Vec<u32>),
}

impl Renumber {
    /// Renumbers `indices` (given while the chunk was filled) in place; the largest new one.
    fn apply(&self, keys: &Keys, indices: &mut [u32]) -> u32 {
        let mut max = 0;
        match self {
            Renumber::Ranks(ranks) => with_popcnt(|| {
                for index in indices {
                    *index = keys.cents.rank(ranks, *index);
                    max = max.max(*index);
                }
            }),
            Renumber::Table(table) => {
                for index in indices {
                    *index = table[*index as usize];
                    max = max.max(*index);
                }
            }
        }
        max
    }
}

/// The page being filled.
#[derive(Debug, Default)]
struct OpenPage {
    def: Runs,
    /// Dictionary indices of the page's non-null values (dictionary pages).
    indices: Vec<u32>,
    /// PLAIN bytes of the page's non-null values (after the dictionary's fallback).
    plain: Vec<u8>,
    /// Whether the page is a PLAIN one (opened after the fallback), even if all its rows are
    /// null and `plain` is empty.
    is_plain: bool,
    levels: usize,
    /// Index of the page's first row in the row group, set when it is closed.
    first_row: u64,
}

/// The `value` chunk of one row group.
#[derive(Debug)]
pub(crate) struct ValueChunk {
    descr: ColumnDescPtr,
    max_def: u32,
    keys: Keys,
    /// Entries the dictionary may hold before the rest of the chunk goes to PLAIN pages.
    max_entries: usize,
    /// Whether the writer settings ask for a dictionary at all.
    dictionary_enabled: bool,
    /// Past the dictionary's limit (or with dictionaries turned off): PLAIN pages from now on.
    plain: bool,
    page: OpenPage,
    /// Closed dictionary pages, whose indices are encoded once the dictionary is complete and
    /// sorted.
    pending: Vec<OpenPage>,
    page_rows: usize,
    page_bytes: usize,
    /// The series of the open page's last rows.
    series: Option<u32>,
    pages: Vec<ChunkPage>,
    /// Rows in the pages written so far.
    rows: u64,
    nulls: u64,
    /// Bounds of the values in PLAIN pages (the dictionary's are read off its entries).
    plain_bounds: Option<(f64, f64)>,
    /// Scratch for a page's bytes before compression.
    scratch: Vec<u8>,
    /// What ZSTD made of this row group's first index pages.
    sampled: Sample,
}

impl ValueChunk {
    pub(crate) fn new(descr: ColumnDescPtr, props: &WriterProperties) -> Result<ValueChunk> {
        let (max_def, max_rep) = (descr.max_def_level() as u32, descr.max_rep_level() as u32);
        if descr.physical_type() != PhysicalType::DOUBLE || max_rep != 0 || max_def > 1 {
            return Err(ParquetError::General(format!(
                "column {} is not a flat double column",
                descr.path()
            )));
        }
        let path = descr.path();
        let max_entries = props.column_dictionary_page_size_limit(path) / 8;
        Ok(ValueChunk {
            max_def,
            keys: Keys {
                in_cents: true,
                cents: Cents::new(),
                // Grown when a chunk leaves cents, which vScope's values never make it do.
                hashed: Dictionary::with_capacity(0),
            },
            max_entries,
            dictionary_enabled: props.dictionary_enabled(path),
            plain: !props.dictionary_enabled(path),
            page: OpenPage::default(),
            pending: Vec::new(),
            page_rows: props.column_data_page_row_count_limit(path).max(1),
            page_bytes: props.column_data_page_size_limit(path).max(1),
            series: None,
            pages: Vec::new(),
            rows: 0,
            nulls: 0,
            plain_bounds: None,
            scratch: Vec::new(),
            sampled: Sample::default(),
            descr,
        })
    }

    /// Starts the next row group's chunk, keeping the buffers.
    pub(crate) fn reset(&mut self) {
        self.sampled = Sample::default();
        self.keys.clear();
        self.plain = !self.dictionary_enabled;
        self.page = OpenPage::default();
        self.pending.clear();
        self.series = None;
        self.pages.clear();
        self.rows = 0;
        self.nulls = 0;
        self.plain_bounds = None;
    }

    /// [`Self::push_keyed`] without keys.
    #[cfg(test)]
    pub(crate) fn push(
        &mut self,
        series: u32,
        values: &[f64],
        zstd: &mut zstd::bulk::Compressor<'static>,
    ) -> Result<()> {
        self.push_keyed(series, ValuesSlice::doubles(values), zstd)
    }

    /// Appends the values of the next rows, all of one series (identified by any number that
    /// differs from its neighbours'); NaN is null. Values held as hundredths keys are encoded
    /// from their keys (see [`crate::transform::RunBatch`]).
    pub(crate) fn push_keyed(
        &mut self,
        series: u32,
        values: ValuesSlice<'_>,
        zstd: &mut zstd::bulk::Compressor<'static>,
    ) -> Result<()> {
        // Read in bulk: a double only where there is no key (a placeholder is never NaN, and a
        // key never null).
        let nulls = match values.as_held() {
            Held::Doubles(doubles) | Held::Mixed { doubles, .. } => doubles,
            Held::Keys(_) => &[],
        };
        if self.max_def == 0 && nulls.iter().any(|v| v.is_nan()) {
            return Err(ParquetError::General(format!(
                "null in the not-null column {}",
                self.descr.path()
            )));
        }
        if self.series != Some(series) && self.page.levels >= MIN_SERIES_PAGE_ROWS {
            self.flush(zstd)?;
        }
        self.series = Some(series);
        let mut rest = values;
        while !rest.is_empty() {
            let room = self.page_rows - self.page.levels;
            let was_plain = self.plain;
            let n = room.min(rest.len());
            let taken = self.push_page(rest.range(0..n));
            rest = rest.range(taken..rest.len());
            let bytes = if self.plain {
                self.page.plain.len()
            } else {
                self.page.indices.len() * bit_width(self.keys.distinct() as u32) as usize / 8
            };
            // A page holds dictionary indices or plain values, never both.
            if self.page.levels >= self.page_rows
                || bytes >= self.page_bytes
                || was_plain != self.plain
            {
                self.flush(zstd)?;
            }
        }
        Ok(())
    }

    /// Adds values to the open page; returns how many it took (fewer than given when the
    /// dictionary fills up: the rest go to plain pages).
    fn push_page(&mut self, held: ValuesSlice<'_>) -> usize {
        let page = &mut self.page;
        if page.levels == 0 {
            page.is_plain = self.plain;
        }
        let len = held.len();
        let (values, known) = match held.as_held() {
            Held::Doubles(doubles) => (doubles, None),
            Held::Mixed { doubles, keys } => (doubles, Some(keys)),
            Held::Keys(keys) => return self.push_page_keys(keys),
        };
        let key = |i: usize| known.map_or(cents::NO_KEY, |k| k[i]);
        let value = |i: usize| match key(i) {
            cents::NO_KEY => values[i],
            k => cents::value(k),
        };
        if self.plain {
            for v in (0..len).map(value) {
                page.def.push(!v.is_nan() as u32, 1);
                if v.is_nan() {
                    self.nulls += 1;
                    continue;
                }
                push_plain(&mut page.plain, &mut self.plain_bounds, v);
            }
            page.levels += values.len();
            return values.len();
        }
        let (keys, pending) = (&mut self.keys, &mut self.pending[..]);
        // At once rather than by doubling: a page is mostly one series' run, known here.
        page.indices.reserve(values.len());
        // The most common case: every value a known hundredth, never a null ([`take_known`]).
        if let Some(known) = known {
            if !known.contains(&cents::NO_KEY) && take_known(keys, page, self.max_entries, known) {
                return known.len();
            }
        }
        let mut taken = values.len();
        // A keyed value's placeholder is never NaN: a NaN is a null.
        if !values.iter().any(|v| v.is_nan()) {
            // The common case: no gaps, one run of levels.
            for (i, &v) in values.iter().enumerate() {
                let index = match key(i) {
                    cents::NO_KEY => {
                        if !keys.in_cents {
                            if let Some(ahead) = values.get(i + PREFETCH_AHEAD) {
                                keys.hashed.prefetch(ahead.to_bits());
                            }
                        }
                        keys.index(v, pending, &mut page.indices)
                    }
                    k => keys.index_key(k, pending, &mut page.indices),
                };
                page.indices.push(index);
                if keys.distinct() >= self.max_entries {
                    self.plain = true;
                    taken = i + 1;
                    break;
                }
            }
            page.def.push(1, taken as u64);
        } else {
            for (i, &v) in values.iter().enumerate() {
                page.def.push(!v.is_nan() as u32, 1);
                if v.is_nan() {
                    self.nulls += 1;
                    continue;
                }
                let index = match key(i) {
                    cents::NO_KEY => keys.index(v, pending, &mut page.indices),
                    k => keys.index_key(k, pending, &mut page.indices),
                };
                page.indices.push(index);
                if keys.distinct() >= self.max_entries {
                    self.plain = true;
                    taken = i + 1;
                    break;
                }
            }
        }
        page.levels += taken;
        taken
    }

    /// [`Self::push_page`] of points all held as their keys: none is null, none has a double.
    fn push_page_keys(&mut self, known: &[u32]) -> usize {
        let page = &mut self.page;
        if self.plain {
            for v in known.iter().map(|&k| cents::value(k)) {
                page.def.push(1, 1);
                push_plain(&mut page.plain, &mut self.plain_bounds, v);
            }
            page.levels += known.len();
            return known.len();
        }
        let (keys, pending) = (&mut self.keys, &mut self.pending[..]);
        page.indices.reserve(known.len());
        if take_known(keys, page, self.max_entries, known) {
            return known.len();
        }
        let mut taken = known.len();
        for (i, &k) in known.iter().enumerate() {
            let index = keys.index_key(k, pending, &mut page.indices);
            page.indices.push(index);
            if keys.distinct() >= self.max_entries {
                self.plain = true;
                taken = i + 1;
                break;
            }
        }
        page.def.push(1, taken as u64);
        page.levels += taken;
        taken
    }

    /// Closes the open page: a dictionary page waits for the complete dictionary, a PLAIN page
    /// is encoded and compressed at once.
    fn flush(&mut self, zstd: &mut zstd::bulk::Compressor<'static>) -> Result<()> {
        let mut page = std::mem::take(&mut self.page);
        if page.levels == 0 {
            return Ok(());
        }
        page.first_row = self.rows;
        self.rows += page.levels as u64;
        if !page.is_plain {
            self.pending.push(page);
            return Ok(());
        }
        let page = self.encode(&page, Encoding::PLAIN, &page.plain, zstd)?;
        self.pages.push(page);
        Ok(())
    }

    /// A data page: the levels, then `body` (bit width and indices, or plain values).
    fn encode(
        &mut self,
        page: &OpenPage,
        encoding: Encoding,
        body: &[u8],
        zstd: &mut zstd::bulk::Compressor<'static>,
    ) -> Result<ChunkPage> {
        let data = &mut self.scratch;
        data.clear();
        if self.max_def > 0 {
            // Data page v1 levels: a 4-byte length, then the RLE runs.
            data.extend_from_slice(&[0; 4]);
            page.def.encode(1, data);
            let len = (data.len() - 4) as u32;
            data[..4].copy_from_slice(&len.to_le_bytes());
        }
        data.extend_from_slice(body);
        let indices = encoding == Encoding::RLE_DICTIONARY;
        let buf = if indices && !self.sampled.compress() {
            zstd_stored(data)
        } else {
            let buf = zstd
                .compress(data)
                .map_err(|e| ParquetError::External(Box::new(e)))?;
            if indices {
                self.sampled.add(data.len(), buf.len());
            }
            buf
        };
        Ok(ChunkPage {
            buf: Bytes::from(buf),
            uncompressed: data.len(),
            num_values: page.levels as u32,
            encoding,
            first_row: page.first_row as i64,
        })
    }

    /// The chunk's bytes and what the row group needs to know.
    ///
    /// The dictionary is written sorted: neighbouring doubles share their high bytes, so ZSTD
    /// packs a sorted dictionary page far smaller than one in order of appearance
    /// (docs/measurements.md), and the indices are renumbered to match before they are encoded.
    pub(crate) fn finish(
        &mut self,
        props: &WriterProperties,
        zstd: &mut zstd::bulk::Compressor<'static>,
    ) -> Result<(Bytes, ColumnCloseResult)> {
        self.flush(zstd)?;
        let (sorted, renumber) = self.keys.sorted();
        let mut plain = Vec::with_capacity(sorted.len() * 8);
        for bits in &sorted {
            plain.extend_from_slice(&bits.to_le_bytes());
        }
        let mut pages = Vec::with_capacity(self.pending.len() + self.pages.len());
        let mut body = Vec::new();
        for mut page in std::mem::take(&mut self.pending) {
            body.clear();
            if plain.is_empty() {
                // Every value of the chunk is null: no dictionary, so levels only, as PLAIN.
                pages.push(self.encode(&page, Encoding::PLAIN, &body, zstd)?);
                continue;
            }
            let max = renumber.apply(&self.keys, &mut page.indices);
            // Each page's width is its own largest index's (at least one bit, as arrow-rs writes).
            let width = bit_width(max).max(1);
            body.push(width);
            encode_indices(&page.indices, width, &mut body);
            pages.push(self.encode(&page, Encoding::RLE_DICTIONARY, &body, zstd)?);
        }
        // PLAIN pages follow every dictionary page: the fallback lasts to the chunk's end.
        pages.append(&mut self.pages);
        let dictionary = if plain.is_empty() {
            None
        } else {
            let buf = zstd
                .compress(&plain)
                .map_err(|e| ParquetError::External(Box::new(e)))?;
            Some((Bytes::from(buf), plain.len(), sorted.len() as u32))
        };
        let statistics = (props.statistics_enabled(self.descr.path()) != EnabledStatistics::None)
            .then(|| self.statistics(&sorted));
        assemble_chunk(
            &self.descr,
            props,
            self.rows,
            dictionary,
            &pages,
            statistics,
            None,
        )
    }

    /// Min, max and null count: the dictionary holds exactly the chunk's dictionary-encoded
    /// values, and the bounds of the plain ones were kept as they came.
    fn statistics(&self, sorted: &[u64]) -> Statistics {
        let plain = self.plain_bounds.into_iter().flat_map(|(lo, hi)| [lo, hi]);
        let dictionary = sorted.first().into_iter().chain(sorted.last());
        double_statistics(
            plain.chain(dictionary.map(|&bits| f64::from_bits(bits))),
            self.nulls,
        )
    }
}

/// Bytes of index pages compressed at the start of each row group, to see what ZSTD makes of
/// them.
const SAMPLED_BYTES: usize = 64 << 10;

/// What ZSTD must save on those pages to compress the rest of the row group's.
const MIN_ZSTD_SAVING: f64 = 0.02;

/// Whether ZSTD pays on a row group's index pages, judged on its first [`SAMPLED_BYTES`]: past
/// them, pages it would not shrink by [`MIN_ZSTD_SAVING`] are stored ([`zstd_stored`]).
#[derive(Debug, Default, Clone, Copy)]
struct Sample {
    raw: usize,
    packed: usize,
}

impl Sample {
    fn compress(&self) -> bool {
        self.raw < SAMPLED_BYTES || (self.packed as f64) < self.raw as f64 * (1.0 - MIN_ZSTD_SAVING)
    }

    fn add(&mut self, raw: usize, packed: usize) {
        if self.raw < SAMPLED_BYTES {
            self.raw += raw;
            self.packed += packed;
        }
    }
}

/// `data` as a ZSTD frame of raw (stored) blocks, what ZSTD itself writes for bytes it cannot
/// compress, without trying. Bit-packed dictionary indices are such bytes: ZSTD only makes the
/// index pages larger, and costs CPU doing it.
/// RFC 8878: the magic number; a header with one segment and the content size (which is then
/// the window size) in 1, 2 or 4 bytes; blocks of at most 128 KiB, each a 3-byte header
/// (last-block bit, type 0 = raw, size) and its bytes. A page of 3 KB costs 10 bytes more.
fn zstd_stored(data: &[u8]) -> Vec<u8> {
    const MAX_BLOCK: usize = 128 << 10;
    let blocks = data.len().div_ceil(MAX_BLOCK).max(1);
    let mut out = Vec::with_capacity(9 + 3 * blocks + data.len());
    out.extend_from_slice(&0xFD2F_B528u32.to_le_bytes());
    // Single segment, no checksum or dictionary; the size field's length in the top two bits.
    let n = data.len();
    if n < 256 {
        out.extend_from_slice(&[0b0010_0000, n as u8]);
    } else if n < 256 + (1 << 16) {
        out.push(0b0110_0000);
        out.extend_from_slice(&((n - 256) as u16).to_le_bytes());
    } else {
        out.push(0b1010_0000);
        out.extend_from_slice(&(n as u32).to_le_bytes());
    }
    for (i, block) in data.chunks(MAX_BLOCK).enumerate() {
        let last = u32::from(i + 1 == blocks);
        out.extend_from_slice(&(last | (block.len() as u32) << 3).to_le_bytes()[..3]);
        out.extend_from_slice(block);
    }
    if data.is_empty() {
        out.extend_from_slice(&[1, 0, 0]);
    }
    out
}

/// A key whose unsigned order is the IEEE total order of the double with these bits (-0.0
/// before 0.0, negative numbers reversed).
fn total_order_key(bits: u64) -> u64 {
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | 1 << 63
    }
}

/// Dictionary indices in the RLE/bit-packing hybrid: groups of eight equal indices become RLE
/// runs (an idle VM's zeros), everything else bit-packed runs; the last group is padded, as the
/// format allows (readers stop at the page's value count).
fn encode_indices(indices: &[u32], bit_width: u8, out: &mut Vec<u8>) {
    let groups = indices.chunks(8);
    let mut packed_from = 0; // first index of the pending bit-packed groups
    let mut i = 0;
    let mut groups = groups.peekable();
    while let Some(group) = groups.next() {
        let same = group.len() == 8 && group.iter().all(|&x| x == group[0]);
        if !same {
            i += group.len();
            continue;
        }
        // A run of equal groups: the pending groups go out bit-packed, then one RLE run.
        put_packed(&indices[packed_from..i], bit_width, out);
        let value = group[0];
        let mut n = 8;
        while let Some(next) = groups.peek() {
            if next.len() == 8 && next.iter().all(|&x| x == value) {
                n += 8;
                groups.next();
            } else {
                break;
            }
        }
        put_run(out, value, n as u64, bit_width.div_ceil(8) as usize);
        i += n;
        packed_from = i;
    }
    put_packed(&indices[packed_from..], bit_width, out);
}

/// One bit-packed run of `values` (padded to a multiple of eight).
fn put_packed(values: &[u32], bit_width: u8, out: &mut Vec<u8>) {
    if values.is_empty() {
        return;
    }
    put_uleb128(out, ((values.len().div_ceil(8) as u64) << 1) | 1);
    pack(out, values, bit_width);
}

/// The common case of both pushes: keys all known hundredths (`known`), the chunk still in
/// hundredths and its dictionary with room for more entries than there are keys. Nothing is then
/// checked a key at a time: each sets its bit, and is its own index until the chunk is complete.
/// Returns whether it took them.
#[inline]
fn take_known(keys: &mut Keys, page: &mut OpenPage, max_entries: usize, known: &[u32]) -> bool {
    let room = max_entries.saturating_sub(keys.cents.distinct);
    if !keys.in_cents || known.len() >= room {
        return false;
    }
    for &key in known {
        keys.cents.insert(key);
    }
    page.indices.extend_from_slice(known);
    page.def.push(1, known.len() as u64);
    page.levels += known.len();
    true
}

/// Appends a double to a plain page and widens the chunk's bounds to it (never a NaN: those are
/// nulls).
#[inline]
fn push_plain(plain: &mut Vec<u8>, bounds: &mut Option<(f64, f64)>, v: f64) {
    plain.extend_from_slice(&v.to_le_bytes());
    let (lo, hi) = bounds.get_or_insert((v, v));
    *lo = lo.min(v);
    *hi = hi.max(v);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use crate::load::encode::tests::{decode, one_column_file};

    use parquet::basic::Repetition;
    use parquet::schema::types::{ColumnDescriptor, ColumnPath, Type};

    fn descr() -> ColumnDescPtr {
        let t = Type::primitive_type_builder("value", PhysicalType::DOUBLE)
            .with_repetition(Repetition::OPTIONAL)
            .build()
            .unwrap();
        Arc::new(ColumnDescriptor::new(
            Arc::new(t),
            1,
            0,
            ColumnPath::from("value"),
        ))
    }

    #[test]
    fn the_dictionary_keeps_first_appearance_order_through_growth() {
        let mut d = Dictionary::with_capacity(4);
        let values: Vec<u64> = (0..5_000)
            .map(|i| ((i % 2_500) as f64 / 100.0).to_bits())
            .collect();
        let indices: Vec<u32> = values.iter().map(|&b| d.intern(b)).collect();
        assert_eq!(d.entries.len(), 2_500);
        for (i, &bits) in values.iter().enumerate() {
            assert_eq!(d.entries[indices[i] as usize], bits);
        }
        assert_eq!(indices[2_500], 0);
        // -0.0 and 0.0 are different values to keep exactly.
        assert_ne!(d.intern((-0.0f64).to_bits()), d.intern(0.0f64.to_bits()));
    }

    #[test]
    fn the_dictionary_is_written_in_ieee_total_order() {
        let mut values = [
            3.5,
            -0.0,
            f64::NEG_INFINITY,
            0.0,
            -2.25,
            1e-300,
            -1e300,
            f64::INFINITY,
        ];
        let mut keys: Vec<u64> = values
            .iter()
            .map(|v| total_order_key(v.to_bits()))
            .collect();
        keys.sort_unstable();
        values.sort_by(f64::total_cmp);
        let back: Vec<u64> = keys
            .iter()
            .map(|&k| if k >> 63 == 1 { k & !(1 << 63) } else { !k })
            .collect();
        assert_eq!(back, values.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
    }

    #[test]
    fn indices_round_trip_with_runs_and_padding() {
        for width in [1u8, 3, 7, 8, 13, 17, 24, 31] {
            let max = if width == 32 {
                u32::MAX
            } else {
                (1u32 << width) - 1
            };
            for n in [0usize, 1, 7, 8, 9, 100, 1_003] {
                // Noise, then a long run of one value, then noise again.
                let mut v: Vec<u32> = (0..n as u32)
                    .map(|i| i.wrapping_mul(2_654_435_761) & max)
                    .collect();
                v.extend(std::iter::repeat_n(max, 3 * n + 5));
                v.extend((0..n as u32).map(|i| (i * 7) & max));
                let mut out = Vec::new();
                encode_indices(&v, width, &mut out);
                let (got, rest) = decode(&out, width, v.len());
                assert_eq!(got, v, "width {width}, n {n}");
                assert!(rest.is_empty(), "{} bytes left over", rest.len());
            }
        }
    }

    /// The chunk of `series` (one push each) and what the chunk's close says; `hashed` keeps the
    /// chunk out of cents from the start.
    fn chunk_of(
        series: &[Vec<f64>],
        props: &WriterProperties,
        descr: ColumnDescPtr,
        hashed: bool,
    ) -> (Bytes, ColumnCloseResult) {
        let mut chunk = ValueChunk::new(descr, props).unwrap();
        chunk.keys.in_cents = !hashed;
        let mut zstd = zstd::bulk::Compressor::new(1).unwrap();
        for (id, values) in series.iter().enumerate() {
            chunk.push(id as u32, values, &mut zstd).unwrap();
        }
        chunk.finish(props, &mut zstd).unwrap()
    }

    /// `series` written as one chunk and read back through arrow-rs, with the first row of each
    /// page.
    fn round_trip(series: &[Vec<f64>], props: WriterProperties) -> (Vec<Option<f64>>, Vec<i64>) {
        use arrow::array::{Array, Float64Array};
        use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
        let props = Arc::new(props);
        let mut file = one_column_file("value", PhysicalType::DOUBLE, Repetition::OPTIONAL, &props);
        let (bytes, close) = chunk_of(series, &props, file.schema_descr().column(0), false);
        let firsts = close.offset_index.as_ref().unwrap().page_locations.iter();
        let firsts = firsts.map(|p| p.first_row_index).collect();
        let mut group = file.next_row_group().unwrap();
        group.append_column(&bytes, close).unwrap();
        group.close().unwrap();
        let bytes = Bytes::from(file.into_inner().unwrap());
        let mut got = Vec::new();
        for batch in ParquetRecordBatchReaderBuilder::try_new(bytes)
            .unwrap()
            .build()
            .unwrap()
        {
            let batch = batch.unwrap();
            let col = batch
                .column(0)
                .as_any()
                .downcast_ref::<Float64Array>()
                .unwrap();
            got.extend((0..col.len()).map(|i| col.is_valid(i).then(|| col.value(i))));
        }
        (got, firsts)
    }

    /// What a reader should get back: NaN as null, every other value to the bit.
    fn expected(series: &[Vec<f64>]) -> Vec<Option<u64>> {
        let values = series.concat().into_iter();
        values
            .map(|v| (!v.is_nan()).then_some(v.to_bits()))
            .collect()
    }

    fn bits(values: Vec<Option<f64>>) -> Vec<Option<u64>> {
        values.into_iter().map(|v| v.map(f64::to_bits)).collect()
    }

    #[test]
    fn values_given_as_their_keys_make_the_same_chunk() {
        // Hundredths, then a series of thirds (the chunk leaves cents), nulls, and a dictionary
        // small enough to fill (the rest goes to PLAIN pages): given as doubles, and given as
        // keys with a placeholder where a value has one, the chunk is the same to the byte.
        let hundredths = |s: u64| -> Vec<f64> {
            (0..1_500u64)
                .map(|i| ((i * 37 + s * 11) % 5_000) as f64 / 100.0 - 9.0)
                .collect()
        };
        let thirds: Vec<f64> = (0..700).map(|i| f64::from(i) / 3.0).collect();
        let gaps: Vec<f64> = (0..900)
            .map(|i| {
                if i % 5 == 0 {
                    f64::NAN
                } else {
                    f64::from(i % 300) / 100.0
                }
            })
            .collect();
        let cases: [(&str, Vec<Vec<f64>>, usize); 3] = [
            (
                "hundredths",
                vec![hundredths(0), gaps.clone(), hundredths(1)],
                1 << 20,
            ),
            (
                "leaves cents",
                vec![hundredths(0), thirds, hundredths(2)],
                1 << 20,
            ),
            (
                "dictionary full",
                vec![hundredths(0), hundredths(1), gaps],
                8 * 2_000,
            ),
        ];
        for (case, series, dictionary_bytes) in cases {
            let props = WriterProperties::builder()
                .set_compression(parquet::basic::Compression::ZSTD(Default::default()))
                .set_dictionary_page_size_limit(dictionary_bytes)
                .build();
            let (plain, plain_close) = chunk_of(&series, &props, descr(), false);
            let mut chunk = ValueChunk::new(descr(), &props).unwrap();
            let mut zstd = zstd::bulk::Compressor::new(1).unwrap();
            for (id, values) in series.iter().enumerate() {
                let keyed = cents::Values::keyed(values);
                // In two pushes, the second starting inside a page.
                let (a, b) = keyed.slice(0..keyed.len()).split_at(333);
                chunk.push_keyed(id as u32, a, &mut zstd).unwrap();
                chunk.push_keyed(id as u32, b, &mut zstd).unwrap();
            }
            let (keyed, keyed_close) = chunk.finish(&props, &mut zstd).unwrap();
            assert_eq!(keyed, plain, "{case}");
            assert_eq!(
                keyed_close.metadata.statistics(),
                plain_close.metadata.statistics(),
                "{case}"
            );
            // A series whose every value has a key given as its keys alone (as the parser
            // hands such a series on), the others as doubles.
            let mut chunk = ValueChunk::new(descr(), &props).unwrap();
            for (id, values) in series.iter().enumerate() {
                let keys: Option<Vec<u32>> = values.iter().map(|&v| cents::key(v)).collect();
                let values = match &keys {
                    Some(keys) => ValuesSlice::keys(keys),
                    None => ValuesSlice::doubles(values),
                };
                let (a, b) = values.split_at(333);
                chunk.push_keyed(id as u32, a, &mut zstd).unwrap();
                chunk.push_keyed(id as u32, b, &mut zstd).unwrap();
            }
            let (keys_only, keys_close) = chunk.finish(&props, &mut zstd).unwrap();
            assert_eq!(keys_only, plain, "{case}, keys alone");
            assert_eq!(
                keys_close.metadata.statistics(),
                plain_close.metadata.statistics(),
                "{case}, keys alone"
            );
        }
    }

    #[test]
    fn a_null_series_after_the_dictionary_fills_stays_in_row_order() {
        // Room for 300 entries: series 0 (1,200 rows of 400 values) fills the dictionary at row
        // 300 and goes on in PLAIN pages; series 1 is all null, a page of its own; then values.
        let props = WriterProperties::builder()
            .set_compression(parquet::basic::Compression::ZSTD(Default::default()))
            .set_dictionary_page_size_limit(8 * 300)
            .build();
        let series = [
            (0..1_200).map(|i| (i % 400) as f64).collect(),
            vec![f64::NAN; 600],
            (0..600).map(|i| 1.5 - i as f64).collect(),
        ];
        let (got, firsts) = round_trip(&series, props);
        assert!(
            firsts.windows(2).all(|w| w[0] < w[1]),
            "pages out of row order: {firsts:?}"
        );
        assert_eq!(bits(got), expected(&series));
    }

    #[test]
    fn stored_frames_are_what_zstd_reads_back() {
        for n in [
            0,
            1,
            255,
            256,
            1_000,
            65_791,
            65_792,
            128 << 10,
            (128 << 10) + 1,
            300_000,
        ] {
            let data: Vec<u8> = (0..n).map(|i| (i * 7 + i / 300) as u8).collect();
            let frame = zstd_stored(&data);
            assert_eq!(
                zstd::bulk::decompress(&frame, n).unwrap(),
                data,
                "{n} bytes"
            );
            assert_eq!(
                zstd::stream::decode_all(&frame[..]).unwrap(),
                data,
                "{n} bytes"
            );
        }
    }

    #[test]
    fn index_pages_zstd_cannot_shrink_are_stored_and_others_compressed() {
        let props = WriterProperties::builder()
            .set_compression(parquet::basic::Compression::ZSTD(Default::default()))
            .build();
        // Scattered indices into 260,000 values (incompressible), then values in runs of a
        // repeating pattern (which ZSTD shrinks).
        let scattered: Vec<Vec<f64>> = (0..300u64)
            .map(|s| {
                let m = (0..1_440u64).map(|i| (i * 2_654_435_761 + s * 40_503) % 260_000);
                m.map(|m| m as f64 / 100.0).collect()
            })
            .collect();
        let patterned: Vec<Vec<f64>> = (0..300u64)
            .map(|s| {
                (0..1_440u64)
                    .map(|i| ((i % 97) * 1_000 + s % 3) as f64)
                    .collect()
            })
            .collect();
        for (series, compressed) in [(scattered, false), (patterned, true)] {
            let mut chunk = ValueChunk::new(descr(), &props).unwrap();
            let mut zstd = zstd::bulk::Compressor::new(1).unwrap();
            for (id, values) in series.iter().enumerate() {
                chunk.push(id as u32, values, &mut zstd).unwrap();
            }
            chunk.finish(&props, &mut zstd).unwrap();
            assert!(chunk.sampled.raw >= SAMPLED_BYTES);
            assert_eq!(chunk.sampled.compress(), compressed);
            // What the sample decided is what the next index page gets, even one that ZSTD
            // would shrink to nothing.
            let body = vec![0u8; 3_000];
            let page = OpenPage::default();
            let encoded = chunk
                .encode(&page, Encoding::RLE_DICTIONARY, &body, &mut zstd)
                .unwrap();
            let data_len = 4 + body.len(); // no levels: their 4-byte length, then the body
            assert_eq!(encoded.uncompressed, data_len);
            if compressed {
                assert!(encoded.buf.len() < 100, "{} bytes", encoded.buf.len());
            } else {
                assert_eq!(encoded.buf.len(), data_len + 10);
                let back = zstd::bulk::decompress(&encoded.buf, data_len).unwrap();
                assert_eq!(back[4..], body[..]);
            }
            // Stored or compressed, the pages read back exactly.
            let (got, _) = round_trip(&series, props.clone());
            assert_eq!(bits(got), expected(&series));
        }
    }

    #[test]
    fn hundredths_are_written_as_the_hash_table_writes_them() {
        // Values of every kind of range, repeats, nulls and negatives; all hundredths.
        let series: Vec<Vec<f64>> = (0..6)
            .map(|s| {
                let sign = if s % 2 == 1 { -37 } else { 1 };
                let m = (0..900).map(|i| ((i * 7_919 + s * 31) % 2_000) as i64 * sign);
                let mut values: Vec<f64> = m.map(|m| m as f64 / 100.0).collect();
                values[s * 10] = f64::NAN;
                values
            })
            .collect();
        let props = WriterProperties::builder()
            .set_compression(parquet::basic::Compression::ZSTD(Default::default()))
            .build();
        assert!(series
            .concat()
            .iter()
            .all(|&v| v.is_nan() || cents::key(v).is_some()));
        let in_cents = chunk_of(&series, &props, descr(), false);
        let hashed = chunk_of(&series, &props, descr(), true);
        assert_eq!(in_cents.0, hashed.0);
        assert_eq!(
            in_cents.1.metadata.statistics(),
            hashed.1.metadata.statistics()
        );
    }

    #[test]
    fn a_chunk_that_leaves_hundredths_midway_reads_back_exactly() {
        // Hundredths first (pages closed and one open), then values that are not: -0.0, a
        // thousandth, a large number; then hundredths again, old and new.
        let cents: Vec<f64> = (0..1_500)
            .map(|i| ((i * 37) % 1_000) as f64 / 100.0)
            .collect();
        let mut odd = cents[..700].to_vec();
        odd[300] = -0.0;
        odd[301] = 0.001;
        odd[302] = 1e12;
        odd[303] = f64::NAN;
        let later: Vec<f64> = (0..800).map(|i| (i % 1_300) as f64 / 100.0 - 3.0).collect();
        let series = [cents, odd, later];
        let props = WriterProperties::builder()
            .set_compression(parquet::basic::Compression::ZSTD(Default::default()))
            .build();
        let (got, _) = round_trip(&series, props);
        assert_eq!(bits(got), expected(&series));
    }

    #[test]
    fn statistics_and_pages_follow_the_values() {
        let props = WriterProperties::builder()
            .set_data_page_row_count_limit(1_000)
            .set_dictionary_page_size_limit(8 * 300)
            .build();
        let mut chunk = ValueChunk::new(descr(), &props).unwrap();
        let mut zstd = zstd::bulk::Compressor::new(3).unwrap();
        // 2,500 rows: 400 distinct values (past the 300-entry limit), one null, -0.0.
        let mut values: Vec<f64> = (0..2_500).map(|i| (i % 400) as f64 / 4.0 - 10.0).collect();
        values[17] = f64::NAN;
        values[18] = -0.0;
        chunk.push(0, &values[..1_234], &mut zstd).unwrap();
        chunk.push(0, &values[1_234..], &mut zstd).unwrap();
        let (_, close) = chunk.finish(&props, &mut zstd).unwrap();
        let meta = &close.metadata;
        assert_eq!(meta.num_values(), 2_500);
        let Some(Statistics::Double(s)) = meta.statistics() else {
            panic!("no double statistics: {:?}", meta.statistics());
        };
        assert_eq!(s.min_opt(), Some(&-10.0));
        assert_eq!(s.max_opt(), Some(&(399.0 / 4.0 - 10.0)));
        assert_eq!(s.null_count_opt(), Some(1));
        let pages = &close.offset_index.as_ref().unwrap().page_locations;
        assert!(pages.len() >= 3, "{} pages", pages.len());
        assert_eq!(pages[0].first_row_index, 0);
        assert!(pages
            .windows(2)
            .all(|w| w[0].first_row_index < w[1].first_row_index));
    }

    #[test]
    fn a_series_page_takes_the_bit_width_of_its_own_indices() {
        use parquet::column::page::Page;
        use parquet::file::serialized_reader::SerializedPageReader;
        let props = WriterProperties::builder()
            .set_compression(parquet::basic::Compression::ZSTD(Default::default()))
            .build();
        let mut chunk = ValueChunk::new(descr(), &props).unwrap();
        let mut zstd = zstd::bulk::Compressor::new(3).unwrap();
        // Four small values, then 600 distinct large ones, then the small ones again; a series
        // that comes in two pushes stays one page, and a short series shares the page of the next.
        let small: Vec<f64> = (0..600).map(|i| (i % 4) as f64).collect();
        let large: Vec<f64> = (0..600).map(|i| 1_000.0 + i as f64).collect();
        chunk.push(7, &small[..300], &mut zstd).unwrap();
        chunk.push(7, &small[300..], &mut zstd).unwrap();
        chunk.push(8, &large, &mut zstd).unwrap();
        chunk.push(9, &small[..10], &mut zstd).unwrap();
        chunk.push(10, &small, &mut zstd).unwrap();
        let (bytes, close) = chunk.finish(&props, &mut zstd).unwrap();
        let reader = SerializedPageReader::new(Arc::new(bytes), &close.metadata, 1_810, None);
        let mut pages = Vec::new();
        for page in reader.unwrap() {
            if let Page::DataPage {
                buf, num_values, ..
            } = page.unwrap()
            {
                // Data page v1: the definition levels' length and runs, then the bit width.
                let levels = u32::from_le_bytes(buf[..4].try_into().unwrap()) as usize;
                let width = buf[4 + levels];
                let (indices, _) = decode(&buf[5 + levels..], width, num_values as usize);
                pages.push((num_values, width, indices.iter().copied().max()));
            }
        }
        // Sorted, the dictionary is 0..=3 then 1000..=1599.
        assert_eq!(
            pages,
            [(600, 2, Some(3)), (600, 10, Some(603)), (610, 2, Some(3))]
        );
    }
}
