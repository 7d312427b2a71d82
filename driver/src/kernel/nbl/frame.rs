//! What every received frame offers, in the indication (`RecvFrame`) or
//! kept after it (`RetainedFrame`): its length, its TCI and its bytes.

use super::recv::{copy_from_nb, copy_from_nb_raw};
use core::ptr::NonNull;
use ndis_sys::NET_BUFFER;

/// A received frame's NET_BUFFER, length and TCI, as its holder gives them
/// to `ReceivedFrame`.
#[derive(Clone, Copy)]
pub struct FrameParts {
    pub(super) nb: NonNull<NET_BUFFER>,
    pub(super) len: u32,
    pub(super) tci: u16,
}

pub(super) mod sealed {
    /// The types that hold a received NET_BUFFER; only this module's
    /// siblings implement it, so `ReceivedFrame` is theirs alone.
    ///
    /// # Safety
    /// `parts().nb` is a NET_BUFFER of `parts().len` bytes whose MDL chain
    /// stays valid, rawnic's and unchanged for as long as `self` is
    /// borrowed.
    pub unsafe trait Holder {
        fn parts(&self) -> super::FrameParts;
    }
}

/// A received frame: its length, its 802.1Q TCI and its bytes, the same
/// whether it is read during the indication or after it was retained.
pub trait ReceivedFrame: sealed::Holder {
    #[inline]
    fn len(&self) -> usize {
        self.parts().len as usize
    }

    #[inline]
    fn is_empty(&self) -> bool {
        self.parts().len == 0
    }

    /// The 802.1Q TCI the NIC reported (0 when none).
    #[inline]
    fn tci(&self) -> u16 {
        self.parts().tci
    }

    /// Copies from `offset` into `dst`; returns the bytes copied.
    #[inline]
    fn copy_to(&self, offset: usize, dst: &mut [u8]) -> usize {
        let nb = self.parts().nb;
        // SAFETY: `Holder`'s contract: the NET_BUFFER and its memory stay
        // valid and rawnic's while `self` is borrowed, which it is here.
        unsafe { copy_from_nb(nb.as_ptr(), offset, dst) }
    }

    /// Copies the frame's first `cap` bytes (fewer if it is shorter) to
    /// `dst`; returns the bytes copied.
    ///
    /// # Safety
    /// `dst` is valid for `cap` bytes of writes and does not overlap the
    /// frame's buffers.
    #[inline]
    unsafe fn copy_to_raw(&self, dst: *mut u8, cap: usize) -> usize {
        let nb = self.parts().nb;
        // SAFETY: `Holder`'s contract, as in `copy_to`; `dst` per the caller.
        unsafe { copy_from_nb_raw(nb.as_ptr(), 0, dst, cap) }
    }
}
