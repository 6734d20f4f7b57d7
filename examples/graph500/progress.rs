//! Progress bars (indicatif) for the long phases. They draw on stderr only when it is a terminal,
//! so CI logs and `--json` runs stay clean; the phase summaries go to stdout either way.

use indicatif::{ProgressBar, ProgressStyle};

/// A bar over `len` units of work, labelled `what`.
pub fn bar(len: u64, what: &'static str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    let style = ProgressStyle::with_template(
        "{msg:>12} {elapsed_precise} [{wide_bar:.cyan/blue}] {human_pos}/{human_len} ({per_sec}, eta {eta})",
    )
    .expect("the template is valid")
    .progress_chars("=> ");
    pb.set_style(style);
    pb.set_message(what);
    pb
}
