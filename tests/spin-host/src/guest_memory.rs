//! How much linear memory the guest reaches: the honest measure of "bounded memory" for a
//! component, which cannot use more than its linear memories (the host's own buffers are
//! the host's business, and Spin's).
//!
//! Every store gets a [`GuestMemory`] as its `wasmtime::ResourceLimiter`. It refuses
//! nothing, so the limits stay what they were without it (the pooling allocator's
//! `max_memory_size` for memories, wasmtime's defaults for instance, table and memory
//! counts, which `Store::limiter` reads from the same trait defaults): it only watches
//! memories grow. Spin's stores have a limiter too (spin-core's `StoreLimitsAsync`, with no
//! memory limit unless `--max-instance-memory` sets one), so having one changes nothing the
//! guest can see. A growth the pool's slot or the memory's own maximum refuses is not
//! counted; one the operating system refuses (`memory_grow_failed`) is taken back from the
//! store's size but may stay in the peak.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// One store's linear memory, all its memories together, and the largest any store of the
/// host has reached ([`crate::Host::peak_guest_memory`]).
pub struct GuestMemory {
    /// The host-wide peak, shared by every store.
    peak: Arc<AtomicUsize>,
    /// What a memory cannot grow past (the pooling allocator's slot): a growth beyond it
    /// fails, so it is not counted.
    max_memory_size: usize,
    /// Bytes of linear memory this store holds. Wasm memories never shrink, so this is
    /// also the store's peak.
    bytes: usize,
    /// The last growth counted, taken back if it fails after all.
    pending: usize,
}

impl GuestMemory {
    pub fn new(peak: Arc<AtomicUsize>, max_memory_size: usize) -> GuestMemory {
        GuestMemory {
            peak,
            max_memory_size,
            bytes: 0,
            pending: 0,
        }
    }
}

impl wasmtime::ResourceLimiter for GuestMemory {
    /// Called when a memory is created (`current` 0) and before each growth.
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let limit = maximum.map_or(self.max_memory_size, |m| m.min(self.max_memory_size));
        self.pending = if desired <= limit {
            desired.saturating_sub(current)
        } else {
            0
        };
        self.bytes += self.pending;
        self.peak.fetch_max(self.bytes, Ordering::Relaxed);
        Ok(true)
    }

    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        self.bytes -= std::mem::take(&mut self.pending);
        Ok(())
    }

    fn table_growing(
        &mut self,
        _current: usize,
        _desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(true)
    }
}
