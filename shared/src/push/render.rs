//! Notes as a recruiter reads them in Lever. Each note ends with a reference line, which is how a
//! retry recognises a note it already wrote.

use super::command::{Assessment, AssessmentResponse, NoteCommand};
use std::fmt::Write;

/// One note to post.
#[derive(Debug, Clone, PartialEq)]
pub struct NotePart {
    pub text: String,
    pub secret: bool,
    /// The reference line's value; unique per note of a command.
    pub reference: String,
}

/// The reference line that marks a note as this command's.
pub fn marker(reference: &str) -> String {
    format!("[ref:{reference}]")
}

pub fn format_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map_or_else(
        || ms.to_string(),
        |t| t.format("%Y-%m-%d %H:%M UTC").to_string(),
    )
}

fn number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x:.2}")
    }
}

fn score(score: Option<f64>, max: Option<f64>) -> Option<String> {
    match (score, max) {
        (Some(s), Some(m)) => Some(format!("{} / {}", number(s), number(m))),
        (Some(s), None) => Some(number(s)),
        _ => None,
    }
}

fn responses(out: &mut String, responses: &[&AssessmentResponse]) {
    for (i, r) in responses.iter().enumerate() {
        let _ = writeln!(out, "\n{}. {}", i + 1, r.question.trim());
        let answer = if r.answer.trim().is_empty() {
            "(no answer)"
        } else {
            r.answer.trim()
        };
        for line in answer.lines() {
            let _ = writeln!(out, "   {line}");
        }
        if let Some(s) = score(r.score, r.max_score) {
            let _ = writeln!(out, "   Score: {s}");
        }
    }
}

fn header(a: &Assessment) -> String {
    let mut out = format!("Assessment: {}\n", a.name.trim());
    let result = [score(a.score, a.max_score), a.result.clone()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" · ");
    if !result.is_empty() {
        let _ = writeln!(out, "Result: {result}");
    }
    if let Some(at) = a.completed_at {
        let _ = writeln!(out, "Completed: {}", format_time(at));
    }
    if let Some(url) = &a.url {
        let _ = writeln!(out, "Report: {url}");
    }
    out
}

/// The notes a note command posts: one, plus a secret one for confidential answers (unless the
/// whole note is secret already).
pub fn note_parts(command_id: &str, c: &NoteCommand) -> Vec<NotePart> {
    let finish = |mut text: String, secret: bool, reference: String| {
        let _ = write!(text, "\n{}", marker(&reference));
        NotePart {
            text,
            secret,
            reference,
        }
    };
    let Some(a) = &c.assessment else {
        let text = c.text.clone().unwrap_or_default().trim_end().to_string() + "\n";
        return vec![finish(text, c.secret, command_id.to_string())];
    };
    let (hidden, open): (Vec<&AssessmentResponse>, Vec<&AssessmentResponse>) = a
        .responses
        .iter()
        .partition(|r| r.confidential && !c.secret);
    let mut main = header(a);
    responses(&mut main, &open);
    let mut parts = vec![finish(main, c.secret, command_id.to_string())];
    if !hidden.is_empty() {
        let mut text = format!("Assessment: {} (confidential answers)\n", a.name.trim());
        responses(&mut text, &hidden);
        parts.push(finish(text, true, format!("{command_id}/confidential")));
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_assessment_reads_well_and_hides_confidential_answers() {
        let c: NoteCommand = serde_json::from_value(json!({"assessment": {
            "name": "Backend exercise", "score": 87, "maxScore": 100, "result": "passed",
            "completedAt": 1_763_906_400_000i64, "url": "https://assess.example/r/1",
            "responses": [
                {"question": "Design a rate limiter", "answer": "Token bucket per key.\nRefill at 10/s.", "score": 9, "maxScore": 10},
                {"question": "Expected salary", "answer": "95k", "confidential": true}
            ]
        }})).unwrap();
        let parts = note_parts("cmd-1", &c);
        assert_eq!(parts.len(), 2);
        assert_eq!(
            parts[0].text,
            "Assessment: Backend exercise\nResult: 87 / 100 · passed\nCompleted: 2025-11-23 14:00 UTC\nReport: https://assess.example/r/1\n\
             \n1. Design a rate limiter\n   Token bucket per key.\n   Refill at 10/s.\n   Score: 9 / 10\n\n[ref:cmd-1]"
        );
        assert!(!parts[0].secret && !parts[0].text.contains("95k"));
        assert_eq!(
            parts[1].text,
            "Assessment: Backend exercise (confidential answers)\n\n1. Expected salary\n   95k\n\n[ref:cmd-1/confidential]"
        );
        assert!(parts[1].secret);
        assert_ne!(parts[0].reference, parts[1].reference);
    }

    #[test]
    fn a_secret_note_keeps_everything_in_one_note() {
        let c: NoteCommand = serde_json::from_value(json!({"secret": true, "assessment": {"name": "T", "responses": [{"question": "Q", "answer": "A", "confidential": true}]}})).unwrap();
        let parts = note_parts("c", &c);
        assert_eq!(parts.len(), 1);
        assert!(parts[0].secret && parts[0].text.contains("A\n"));
        let text: NoteCommand =
            serde_json::from_value(json!({"text": "Candidate replied by SMS.\n"})).unwrap();
        assert_eq!(
            note_parts("c2", &text)[0].text,
            "Candidate replied by SMS.\n\n[ref:c2]"
        );
    }
}
