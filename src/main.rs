use clap::Parser;

fn main() {
    // protoc starts protoreg as a plugin that is a command line (`protoreg protoc`).
    if let Some(status) = protoreg::commands::protoc::as_plugin() {
        std::process::exit(status);
    }
    let cli = protoreg::cli::Cli::parse();
    if let Err(e) = protoreg::run(&cli) {
        let message = e.to_string();
        eprintln!("error: {message}");
        let mut source = std::error::Error::source(&e);
        while let Some(cause) = source {
            // Most messages already quote their cause; print only what adds something.
            let text = protoreg::error::sanitize(&cause.to_string());
            if !message.contains(&text) {
                eprintln!("  caused by: {text}");
            }
            source = cause.source();
        }
        std::process::exit(e.exit_code());
    }
}
