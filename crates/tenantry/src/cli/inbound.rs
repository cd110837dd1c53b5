//! The conversations and messages stored for a tenant from its providers'
//! webhooks.

use super::Ctx;
use super::error::{CliError, CliResult, Exit};
use super::resources::{Page, collect, value};
use clap::Subcommand;
use futures_util::TryStreamExt;
use serde_json::json;
use tenantry_client::ListParams;

#[derive(Subcommand, Debug)]
pub enum ConversationsCommand {
    /// A tenant's conversations, most recent activity first.
    List {
        tenant: String,
        #[command(flatten)]
        page: Page,
    },
    /// One conversation with its messages.
    Show {
        tenant: String,
        conversation: String,
        #[command(flatten)]
        page: Page,
    },
}

const CONVERSATION_COLUMNS: &[&str] = &[
    "id",
    "channel",
    "account_id",
    "contact.wa_id",
    "contact.profile_name",
    "last_activity_at",
];

const MESSAGE_COLUMNS: &[&str] = &[
    "id",
    "direction",
    "type",
    "from",
    "to",
    "status",
    "created_at",
];

pub async fn conversations(ctx: &Ctx, cmd: ConversationsCommand) -> CliResult {
    match cmd {
        ConversationsCommand::List { tenant, page } => {
            let items = ctx.client.inbound(&tenant).conversations(page.params());
            ctx.out
                .list(&collect(&page, items).await?, CONVERSATION_COLUMNS);
        }
        ConversationsCommand::Show {
            tenant,
            conversation,
            page,
        } => {
            let inbound = ctx.client.inbound(&tenant);
            // There is no single-conversation endpoint: find it in the list
            // (which also answers 404 for a tenant the key cannot see).
            let found = inbound
                .conversations(ListParams::limit(200))
                .try_filter(|c| std::future::ready(c.id == conversation))
                .try_next()
                .await?;
            let Some(found) = found else {
                return Err(CliError::new(
                    Exit::NotFound,
                    format!("conversation_not_found: {tenant} has no conversation {conversation}"),
                ));
            };
            let messages = collect(&page, inbound.messages(&conversation, page.params())).await?;
            if ctx.out.json {
                ctx.out.one(&json!({
                    "conversation": value(&found),
                    "messages": messages,
                }));
            } else {
                ctx.out.one(&value(&found));
                println!();
                ctx.out.list(&messages, MESSAGE_COLUMNS);
            }
        }
    }
    Ok(())
}
