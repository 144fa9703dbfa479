//! The bytes of a connection: the receive buffer (`recv_buf`), the send queue
//! (`send_queue`: copies, shared `Bytes` and file segments, in order) and the pool
//! both borrow memory from (`pool`). Nothing here touches a socket: the transport
//! fills the receive buffer and drains the send queue.

pub mod pool;
pub mod recv_buf;
pub mod send_queue;
