//! A conversation as a recruiter reads it in Lever: a header (candidate, channel, period, message
//! count), then one line per message with the time in the tenant's time zone, the sender and the text.

use crate::push::render::marker;
use crate::store::Message;
use chrono::TimeZone;
use chrono_tz::Tz;
use std::fmt::Write;

/// One note of a transcript (a long one is split into numbered parts).
#[derive(Debug, Clone, PartialEq)]
pub struct TranscriptPart {
    pub text: String,
    pub reference: String,
}

fn local(ms: i64, tz: Tz) -> chrono::DateTime<Tz> {
    tz.timestamp_millis_opt(ms)
        .single()
        .unwrap_or_else(|| tz.timestamp_millis_opt(0).unwrap())
}

/// The candidate's name as the messages show it: the first inbound sender's name, else their number.
fn candidate(messages: &[Message]) -> String {
    let inbound = messages.iter().find(|m| m.direction == "inbound");
    inbound
        .and_then(|m| m.sender_name.clone())
        .or_else(|| inbound.map(|m| m.from.clone()))
        .unwrap_or_else(|| "the candidate".into())
}

fn sender(m: &Message) -> String {
    m.sender_name
        .clone()
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| m.from.clone())
}

/// Renders `messages` (in time order) as one or more notes of at most `max_chars` characters each.
pub fn transcript(
    batch_id: &str,
    messages: &[Message],
    tz: Tz,
    max_chars: usize,
) -> Vec<TranscriptPart> {
    let mut messages: Vec<&Message> = messages.iter().collect();
    messages.sort_by(|a, b| (a.sent_at, &a.message_id).cmp(&(b.sent_at, &b.message_id)));
    let (Some(first), Some(last)) = (messages.first(), messages.last()) else {
        return Vec::new();
    };
    let (start, end) = (local(first.sent_at, tz), local(last.sent_at, tz));
    let period = if start.date_naive() == end.date_naive() {
        format!(
            "{} {}–{}",
            start.format("%-d %b %Y"),
            start.format("%H:%M"),
            end.format("%H:%M")
        )
    } else {
        format!(
            "{} – {}",
            start.format("%-d %b %Y %H:%M"),
            end.format("%-d %b %Y %H:%M")
        )
    };
    let owned: Vec<Message> = messages.iter().map(|m| (*m).clone()).collect();
    let header = format!(
        "SMS conversation with {}\n{} · {} message{} · times in {}\n",
        candidate(&owned),
        period,
        messages.len(),
        if messages.len() == 1 { "" } else { "s" },
        tz.name()
    );
    // One line per message; a date line where the day changes.
    let mut lines = Vec::new();
    let mut day = None;
    for m in &messages {
        let t = local(m.sent_at, tz);
        if day != Some(t.date_naive()) {
            if day.is_some() || start.date_naive() != end.date_naive() {
                lines.push(format!("— {} —", t.format("%a %-d %b %Y")));
            }
            day = Some(t.date_naive());
        }
        let text = m.body.trim().replace('\n', "\n      ");
        lines.push(format!("{} {}: {}", t.format("%H:%M"), sender(m), text));
    }
    // Parts: as many lines as fit under the limit, leaving room for the header and reference.
    let room = max_chars.saturating_sub(header.len() + 64).max(200);
    let mut chunks: Vec<Vec<String>> = vec![Vec::new()];
    let mut size = 0;
    for line in lines {
        let line: String = if line.len() > room {
            line.chars()
                .take(room.saturating_sub(1))
                .collect::<String>()
                + "…"
        } else {
            line
        };
        if size + line.len() + 1 > room && !chunks.last().unwrap().is_empty() {
            chunks.push(Vec::new());
            size = 0;
        }
        size += line.len() + 1;
        chunks.last_mut().unwrap().push(line);
    }
    let total = chunks.len();
    chunks
        .into_iter()
        .enumerate()
        .map(|(i, chunk)| {
            let reference = if total == 1 {
                batch_id.to_string()
            } else {
                format!("{batch_id}/{}", i + 1)
            };
            let mut text = header.clone();
            if total > 1 {
                let _ = writeln!(text, "Part {} of {total}", i + 1);
            }
            text.push('\n');
            for line in chunk {
                text.push_str(&line);
                text.push('\n');
            }
            let _ = write!(text, "\n{}", marker(&reference));
            TranscriptPart { text, reference }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(id: &str, direction: &str, sent_at: i64, body: &str, name: Option<&str>) -> Message {
        let (from, to) = if direction == "inbound" {
            ("+447700900123", "+447700900999")
        } else {
            ("+447700900999", "+447700900123")
        };
        Message {
            tenant_id: "acme".into(),
            opportunity_id: "opp".into(),
            message_id: id.into(),
            direction: direction.into(),
            from: from.into(),
            to: to.into(),
            body: body.into(),
            sent_at,
            sender_name: name.map(str::to_string),
        }
    }

    /// 23 Nov 2026 10:00 UTC.
    const T: i64 = 1_795_428_000_000;

    #[test]
    fn a_conversation_reads_line_by_line_in_the_tenants_time_zone() {
        let messages = vec![
            msg(
                "m2",
                "inbound",
                T + 5 * 60_000,
                "Yes, Thursday at 2pm works.\nSee you then",
                Some("Ada Lovelace"),
            ),
            msg(
                "m1",
                "outbound",
                T,
                "Hi Ada, can you do a call on Thursday?",
                Some("Sam (Recruiter)"),
            ),
            msg(
                "m3",
                "outbound",
                T + 40 * 60_000,
                "Great, invite sent.",
                None,
            ),
        ];
        let parts = transcript("b-1", &messages, chrono_tz::America::New_York, 10_000);
        assert_eq!(parts.len(), 1);
        let expected = "SMS conversation with Ada Lovelace\n\
            23 Nov 2026 05:00–05:40 · 3 messages · times in America/New_York\n\
            \n\
            05:00 Sam (Recruiter): Hi Ada, can you do a call on Thursday?\n\
            05:05 Ada Lovelace: Yes, Thursday at 2pm works.\n      See you then\n\
            05:40 +447700900999: Great, invite sent.\n\
            \n\
            [ref:b-1]";
        assert_eq!(parts[0].text, expected);
    }

    #[test]
    fn days_are_marked_and_long_transcripts_split_in_order() {
        let messages: Vec<Message> = (0..60)
            .map(|i| {
                msg(
                    &format!("m{i:02}"),
                    if i % 2 == 0 { "inbound" } else { "outbound" },
                    T + i * 3_600_000,
                    &format!("message number {i} {}", "x".repeat(40)),
                    None,
                )
            })
            .collect();
        let parts = transcript("b-2", &messages, chrono_tz::UTC, 1_000);
        assert!(parts.len() > 3, "{}", parts.len());
        assert!(
            parts.iter().all(|p| p.text.len() <= 1_000),
            "each part fits"
        );
        assert!(parts[0].text.contains("Part 1 of") && parts[0].text.ends_with("[ref:b-2/1]"));
        assert!(
            parts[0].text.contains("— Tue 24 Nov 2026 —")
                || parts.iter().any(|p| p.text.contains("— Tue 24 Nov 2026 —"))
        );
        // Every message appears exactly once, in order across the parts.
        let all: String = parts.iter().map(|p| p.text.as_str()).collect();
        let mut at = 0;
        for i in 0..60 {
            let needle = format!("message number {i} ");
            let pos = all[at..]
                .find(&needle)
                .unwrap_or_else(|| panic!("message {i} missing or out of order"));
            at += pos + needle.len();
            assert_eq!(all.matches(&needle).count(), 1);
        }
        assert_eq!(
            parts
                .iter()
                .map(|p| p.reference.clone())
                .collect::<std::collections::HashSet<_>>()
                .len(),
            parts.len()
        );
    }
}
