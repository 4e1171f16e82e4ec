use crate::cli::ExtractArgs;
use crate::error::Result;
use crate::pipeline::resolve::{self, Artifact};

pub fn run(args: &ExtractArgs) -> Result<()> {
    let artifact = Artifact {
        expected: super::parse_expected(&args.sha256, args.size.as_deref())?,
        layout: super::parse_layout(&args.layout)?,
    };
    resolve::extract_local(&args.archive, &artifact, &args.out)
}
