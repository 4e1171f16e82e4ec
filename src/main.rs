use clap::Parser;

fn main() {
    let cli = protoreg::cli::Cli::parse();
    if let Err(e) = protoreg::run(&cli) {
        eprintln!("error: {e}");
        let mut source = std::error::Error::source(&e);
        while let Some(cause) = source {
            eprintln!("  caused by: {cause}");
            source = cause.source();
        }
        std::process::exit(e.exit_code());
    }
}
