//! `kechuang`: run the whole platform in one process, or mint a development token.

mod up;

use clap::{Parser, Subcommand};
use kechuang_platform::auth::{Authenticator, Caller, Role};
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "kechuang",
    version,
    about = "科创供应链: the science-innovation supply chain platform"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start all four services in this process (Postgres and NATS from KC_* settings).
    Up,
    /// Print a development JWT for the given role (signed with KC_JWT_SECRET).
    Token {
        /// enterprise, tech_manager, supplier, finance_officer, finance_approver, auditor, service
        #[arg(long)]
        role: Role,
        /// The enterprise an enterprise user acts for.
        #[arg(long)]
        enterprise: Option<String>,
        /// The person (four eyes and the audit trail tell people apart by it).
        #[arg(long, default_value = "dev")]
        subject: String,
        /// Validity in hours.
        #[arg(long, default_value_t = 24)]
        hours: u64,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Up => up::run(),
        Command::Token {
            role,
            enterprise,
            subject,
            hours,
        } => {
            if role == Role::Enterprise && enterprise.is_none() {
                anyhow::bail!("an enterprise token needs --enterprise ID");
            }
            let settings = kechuang_platform::launcher::load_settings()?;
            let caller = Caller {
                role,
                subject,
                enterprise_id: enterprise,
            };
            let token = Authenticator::new(&settings.jwt_secret)
                .mint(&caller, Duration::from_secs(hours * 3600));
            println!("{token}");
            Ok(())
        }
    }
}
