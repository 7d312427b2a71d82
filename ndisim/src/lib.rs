//! ndisim: runs the real, unmodified rawnic.sys in a Linux process.
