//! What protoreg prints on standard output. A reader that stops early (`protoreg versions
//! protoc | head -1`) closes the pipe: the run then ends quietly with status 0, as a Unix
//! tool killed by SIGPIPE ends, where `println!` panics. Rust ignores SIGPIPE so that a
//! socket a registry closes is an error to handle, not a kill, so the pipe is handled here.

use std::io::Write;

/// Write `args` to standard output; end the run on a closed pipe, or with status 1 and a
/// message on any other failure to write.
pub fn write(args: std::fmt::Arguments, newline: bool) {
    let mut out = std::io::stdout().lock();
    // Standard output is line-buffered: a line is out at its newline; anything else is
    // flushed here, so a closed pipe is found now, not at exit.
    let written = out.write_fmt(args).and_then(|()| {
        if newline {
            out.write_all(b"\n")
        } else {
            out.flush()
        }
    });
    match written {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => {
            eprintln!("error: cannot write to standard output: {e}");
            std::process::exit(1);
        }
    }
}

/// `println!` for protoreg's output: see [`write`].
#[macro_export]
macro_rules! outln {
    () => {
        $crate::output::write(format_args!(""), true)
    };
    ($($arg:tt)*) => {
        $crate::output::write(format_args!($($arg)*), true)
    };
}

/// `print!` for protoreg's output: see [`write`].
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::write(format_args!($($arg)*), false)
    };
}
