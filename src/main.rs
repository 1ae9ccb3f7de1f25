//! The `losant-operator` command line.

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(version, about = "Manages Losant integrations from Kubernetes objects")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the CustomResourceDefinitions (YAML) to install.
    Crds,
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Crds => print!("{}", losant_operator::crd::crds_yaml()?),
    }
    Ok(())
}
