//! The deployed functions: one binary each (`functions/src/bin/<name>.rs`), one
//! `AWS::Serverless::Function` each in `infra/template.yaml`. What each reads from its environment is
//! [`crate::config::Config::load`]'s business; this is the list and the names.

use crate::push::command::PushKind;
use crate::webhook::EventKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// connect, replace key, test, users, owner, disconnect, connect links
    Tenants,
    /// register, paste token
    Webhooks,
    /// status JSON and HTML
    Status,
    /// postings sync, role mapping
    Roles,
    /// candidate links
    Resolve,
    /// OAuth connect: authorize link, callback
    OAuth,
    /// the relay's dead letters: replay
    Events,
}

impl Group {
    pub const ALL: [Group; 7] = [
        Group::Tenants,
        Group::Webhooks,
        Group::Status,
        Group::Roles,
        Group::Resolve,
        Group::OAuth,
        Group::Events,
    ];

    /// The function that serves the group.
    pub const fn function_name(self) -> &'static str {
        match self {
            Group::Tenants => "admin-tenants",
            Group::Webhooks => "admin-webhooks",
            Group::Status => "admin-status",
            Group::Roles => "admin-roles",
            Group::Resolve => "admin-resolve",
            Group::OAuth => "admin-oauth",
            Group::Events => "admin-events",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    Webhook(EventKind),
    Push(PushKind),
    TranscriptIngest,
    TranscriptFlush,
    Sync,
    Admin(Group),
    /// Publishes the table's stream (the outbox) on the vendor's bus.
    Relay,
    /// The pages a connect link opens, where the customer's Lever admin connects the account.
    ConnectPages,
}

impl Function {
    /// Every function, in the template's order.
    pub fn all() -> Vec<Function> {
        let mut all: Vec<Function> = EventKind::ALL.into_iter().map(Function::Webhook).collect();
        all.extend(Group::ALL.into_iter().map(Function::Admin));
        all.extend(PushKind::ALL.into_iter().map(Function::Push));
        all.extend([
            Function::TranscriptIngest,
            Function::TranscriptFlush,
            Function::Sync,
            Function::Relay,
            Function::ConnectPages,
        ]);
        all
    }

    /// The binary's (and the deployed function's) name, e.g. `push-note`.
    pub const fn name(self) -> &'static str {
        match self {
            Function::Webhook(k) => k.function_name(),
            Function::Push(k) => k.function_name(),
            Function::TranscriptIngest => "transcript-ingest",
            Function::TranscriptFlush => "transcript-flush",
            Function::Sync => "sync",
            Function::Admin(g) => g.function_name(),
            Function::Relay => "relay",
            Function::ConnectPages => "connect-pages",
        }
    }

    pub fn parse(name: &str) -> Option<Function> {
        Function::all().into_iter().find(|f| f.name() == name)
    }

    /// Whether it calls Lever with a tenant's credentials (and so may refresh OAuth tokens).
    pub const fn calls_lever(self) -> bool {
        match self {
            Function::Push(_) | Function::TranscriptFlush | Function::Sync => true,
            Function::ConnectPages => true,
            Function::Admin(g) => !matches!(g, Group::Status | Group::Events),
            Function::Webhook(_) | Function::TranscriptIngest | Function::Relay => false,
        }
    }

    /// Which of a tenant's secrets it reads and writes (its role allows those only): the webhook
    /// functions the signature tokens, the functions that call Lever the credentials, the admin
    /// functions that tell or set tokens both.
    pub const fn secret_parts(self) -> crate::secrets::Parts {
        use crate::secrets::Parts;
        match self {
            Function::Webhook(_) => Parts::WEBHOOKS,
            Function::Push(_) | Function::TranscriptFlush | Function::Sync => Parts::LEVER,
            Function::Admin(Group::Roles | Group::Resolve) => Parts::LEVER,
            Function::Admin(Group::Events) => Parts::NONE,
            // The status tells the kind of credentials from the tenant record.
            Function::Admin(Group::Status) => Parts::WEBHOOKS,
            Function::Admin(_) | Function::ConnectPages => Parts::ALL,
            Function::TranscriptIngest | Function::Relay => Parts::NONE,
        }
    }

    /// Whether its role reads single table items (GetItem), so that the cold start can open the
    /// table's connection with one: all but the relay (its role reads in batches) and admin-events
    /// (no table).
    pub const fn reads_table_items(self) -> bool {
        !matches!(self, Function::Relay | Function::Admin(Group::Events))
    }

    /// Whether it publishes vendor events on the bus: the relay, and admin-events when it replays
    /// the relay's dead letters (everything else writes them to the outbox).
    pub const fn publishes_events(self) -> bool {
        matches!(self, Function::Relay | Function::Admin(Group::Events))
    }

    /// Whether it connects tenants to a Lever environment (by name: production, sandbox, eu, custom).
    pub const fn connects_tenants(self) -> bool {
        matches!(
            self,
            Function::Admin(Group::Tenants | Group::OAuth) | Function::ConnectPages
        )
    }

    /// Whether it starts OAuth authorizations (and so needs the redirect URI, authorize URL and
    /// scopes).
    pub const fn starts_oauth(self) -> bool {
        matches!(self, Function::Admin(Group::OAuth) | Function::ConnectPages)
    }

    /// Whether it makes or checks webhook URL keys (`crate::urlkey`): the webhook functions and
    /// those that tell webhook URLs, the status page included.
    pub const fn knows_url_keys(self) -> bool {
        matches!(self, Function::Webhook(_)) || self.tells_webhook_urls()
    }

    /// Whether it tells webhook URLs (connect answers, registration, OAuth callback, status).
    pub const fn tells_webhook_urls(self) -> bool {
        matches!(
            self,
            Function::Admin(Group::Tenants | Group::Webhooks | Group::OAuth | Group::Status)
                | Function::ConnectPages
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_parse_back() {
        let all = Function::all();
        assert_eq!(all.len(), 29);
        for f in &all {
            assert_eq!(Function::parse(f.name()), Some(*f));
        }
        let mut names: Vec<&str> = all.iter().map(|f| f.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), all.len());
    }

    /// Every function has its binary, and every binary is a function.
    #[test]
    fn one_binary_per_function() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../functions/src/bin");
        let mut bins: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                e.unwrap()
                    .path()
                    .file_stem()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        bins.sort();
        let mut names: Vec<String> = Function::all()
            .iter()
            .map(|f| f.name().to_string())
            .collect();
        names.sort();
        assert_eq!(bins, names);
    }
}
