//! A few bytes on the stack: frame headers, close payloads and whole control frames
//! are built here rather than on the heap, so sending them allocates nothing.

/// Up to `N` bytes (`N` <= 255), filled front to back.
#[derive(Clone, Copy)]
pub struct StackBuf<const N: usize> {
    bytes: [u8; N],
    len: u8,
}

impl<const N: usize> StackBuf<N> {
    pub const fn new() -> StackBuf<N> {
        StackBuf { bytes: [0; N], len: 0 }
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    /// The filled part, to transform in place (masking).
    pub(crate) fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.bytes[..self.len as usize]
    }

    /// Appends `data`. Callers size `N` for the longest thing they build, so running
    /// out of room is a bug in this module, not bad input.
    pub(crate) fn push(&mut self, data: &[u8]) {
        let at = self.len as usize;
        self.bytes[at..at + data.len()].copy_from_slice(data);
        self.len = (at + data.len()) as u8;
    }
}

impl<const N: usize> Default for StackBuf<N> {
    fn default() -> StackBuf<N> {
        StackBuf::new()
    }
}

impl<const N: usize> std::ops::Deref for StackBuf<N> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl<const N: usize> std::fmt::Debug for StackBuf<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StackBuf({:02x?})", self.as_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pushes_append_and_views_see_only_the_filled_part() {
        let mut b = StackBuf::<8>::new();
        assert!(b.is_empty());
        b.push(&[1, 2]);
        b.push(&[3]);
        assert_eq!(&b[..], &[1, 2, 3]);
        b.as_mut_slice()[0] = 9;
        assert_eq!(b.as_slice(), &[9, 2, 3]);
        assert_eq!(format!("{b:?}"), "StackBuf([09, 02, 03])");
    }
}
