//! Report files: an object of the upload bucket attached to the opportunity (`POST
//! /opportunities/:id/files`, multipart, streamed from S3). Exactly once as for notes: the file's
//! name in Lever carries a reference to the command (`crate::files::tagged_name`), and after an
//! attempt whose outcome is unknown the command's own file is looked for by that name and its size
//! before it is sent again (another command's upload of the same report has another name).

use super::*;
use crate::files::UploadError;
use crate::lever::Upload;
use command::FileCommand;

impl<
    L: LeverApi,
    S: CommandStore + TenantStore + StatsStore + Clone,
    K: SecretStore,
    C: Clock + Clone,
> Pusher<L, S, K, C>
{
    pub(super) async fn file(
        &self,
        lever: &Lever<'_, L>,
        c: &Command,
        f: &FileCommand,
        user: &str,
        attempt: &mut Attempt,
    ) -> Result<Value, Stop> {
        let Some(uploads) = &self.uploads else {
            return Err(Stop::Invalid(
                "this deployment has no upload bucket (UPLOAD_BUCKET)".into(),
            ));
        };
        let opp = c.envelope.opportunity_id.as_str();
        let checked = uploads
            .check(&c.envelope.tenant_id, &f.object_key, f.file_name.as_deref())
            .await
            .map_err(|e| match e {
                UploadError::Unavailable(m) => Stop::Lever(LeverError::Transport {
                    message: m,
                    maybe_applied: false,
                }),
                e => Stop::Invalid(e.to_string()),
            })?;
        let name =
            crate::files::tagged_name(&checked.name, &c.envelope.tenant_id, &c.envelope.command_id);
        // This command's file: its tagged name and its size (Lever may report no size).
        let found = |files: Vec<crate::lever::models::LeverFile>| {
            files
                .into_iter()
                .find(|x| x.name == name && x.size.is_none_or(|s| s == checked.size))
        };
        if attempt.uncertain
            && let Some(existing) = found(lever.files(opp).await?)
        {
            return Ok(
                json!({ "fileId": existing.id, "name": existing.name, "size": checked.size }),
            );
        }
        let upload = Upload {
            name: name.clone(),
            content_type: checked.content_type.to_string(),
            length: checked.size,
            source: uploads.source(&checked.key),
        };
        let created = lever
            .upload_file(opp, upload, user)
            .await
            .map_err(|e| match e {
                // "File took too long to upload": nothing was stored; try again later.
                LeverError::Rejected {
                    status: 408,
                    message,
                    ..
                } => LeverError::Transport {
                    message,
                    maybe_applied: false,
                },
                e => e,
            })?;
        attempt.wrote = true;
        Ok(json!({ "fileId": created.id, "name": name, "size": checked.size }))
    }
}
