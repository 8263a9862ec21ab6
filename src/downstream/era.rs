//! Results shaped for the IDE's protocol generation, whatever generation the
//! upstream that produced them speaks.
//!
//! A result forwarded from a 2025-11-25 server has no `resultType`, which the
//! 2026-07-28 schema requires (strict clients reject such results); one from a
//! 2026-07-28 server carries `ttlMs`/`cacheScope`, which a 2025 IDE has never
//! heard of. rmcp fills the cache hints for modern peers and strips
//! `resultType: "complete"` for legacy ones, but only on results a handler
//! returns; this is applied to every message the stdio edge sends, so the rule
//! has one place and covers rmcp's own answers too.

use rmcp::model::{ErrorCode, ResultType, ServerResult, TaskAckResult};

/// Give `result` the wire shape of the IDE's generation (`modern`: 2026-07-28).
pub fn fit_result(result: &mut ServerResult, modern: bool) {
    if modern && matches!(result, ServerResult::EmptyResult(_)) {
        // The 2026-07-28 empty result is `{"resultType": "complete"}`.
        *result = ServerResult::TaskAckResult(TaskAckResult::new());
        return;
    }
    let (result_type, hints) = match result {
        ServerResult::CompleteResult(r) => (&mut r.result_type, None),
        ServerResult::GetPromptResult(r) => (&mut r.result_type, None),
        ServerResult::CallToolResult(r) => (&mut r.result_type, None),
        ServerResult::ListPromptsResult(r) => (&mut r.result_type, Some((&mut r.ttl_ms, &mut r.cache_scope))),
        ServerResult::ListResourcesResult(r) => (&mut r.result_type, Some((&mut r.ttl_ms, &mut r.cache_scope))),
        ServerResult::ListResourceTemplatesResult(r) => (&mut r.result_type, Some((&mut r.ttl_ms, &mut r.cache_scope))),
        ServerResult::ReadResourceResult(r) => (&mut r.result_type, Some((&mut r.ttl_ms, &mut r.cache_scope))),
        ServerResult::ListToolsResult(r) => (&mut r.result_type, Some((&mut r.ttl_ms, &mut r.cache_scope))),
        _ => return,
    };
    if modern {
        let complete = result_type.get_or_insert(ResultType::COMPLETE).is_complete();
        if let (true, Some((ttl, scope))) = (complete, hints) {
            ttl.get_or_insert(0);
            scope.get_or_insert(rmcp::model::CacheScope::Private);
        }
    } else {
        result_type.take_if(|t| t.is_complete());
        if let Some((ttl, scope)) = hints {
            *ttl = None;
            *scope = None;
        }
    }
}

/// Give an error the code the IDE's generation uses: 2026-07-28 reports an
/// unknown resource as invalid params (-32602) rather than -32002.
pub fn fit_error(error: &mut rmcp::ErrorData, modern: bool) {
    if modern && error.code == ErrorCode::RESOURCE_NOT_FOUND {
        error.code = ErrorCode::INVALID_PARAMS;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmcp::model::{CallToolResult, ContentBlock, EmptyResult, ListToolsResult, ReadResourceResult};
    use serde_json::{Value, json};

    fn wire(r: &ServerResult) -> Value {
        serde_json::to_value(r).unwrap()
    }

    /// A result parsed from a 2025-11-25 server's answer gets `resultType` (and
    /// cache hints on cacheable results) for a 2026-07-28 IDE.
    #[test]
    fn legacy_results_become_valid_for_a_modern_ide() {
        let from_legacy: CallToolResult =
            serde_json::from_value(json!({ "content": [{ "type": "text", "text": "hi" }] })).unwrap();
        assert!(from_legacy.result_type.is_none());
        let mut r = ServerResult::CallToolResult(from_legacy);
        fit_result(&mut r, true);
        assert_eq!(wire(&r)["resultType"], json!("complete"));

        let read: ReadResourceResult = serde_json::from_value(json!({ "contents": [] })).unwrap();
        let mut r = ServerResult::ReadResourceResult(read);
        fit_result(&mut r, true);
        let w = wire(&r);
        assert_eq!(
            (w["resultType"].clone(), w["ttlMs"].clone()),
            (json!("complete"), json!(0))
        );
        assert_eq!(w["cacheScope"], json!("private"));

        let mut r = ServerResult::EmptyResult(EmptyResult {});
        fit_result(&mut r, true);
        assert_eq!(wire(&r), json!({ "resultType": "complete" }));
    }

    /// A 2025 IDE never sees the 2026-only fields, whoever produced the result.
    #[test]
    fn modern_fields_never_reach_a_legacy_ide() {
        let mut list = ListToolsResult::with_all_items(vec![]);
        list.ttl_ms = Some(60_000);
        list.cache_scope = Some(rmcp::model::CacheScope::Public);
        let mut r = ServerResult::ListToolsResult(list);
        fit_result(&mut r, false);
        assert_eq!(wire(&r), json!({ "tools": [] }));

        let mut r = ServerResult::CallToolResult(CallToolResult::success(vec![ContentBlock::text("x")]));
        fit_result(&mut r, false);
        assert!(wire(&r).get("resultType").is_none());

        let mut r = ServerResult::EmptyResult(EmptyResult {});
        fit_result(&mut r, false);
        assert_eq!(wire(&r), json!({}));
    }

    #[test]
    fn resource_not_found_code_per_generation() {
        let mut e = rmcp::ErrorData::resource_not_found("gone", None);
        fit_error(&mut e, false);
        assert_eq!(e.code, ErrorCode::RESOURCE_NOT_FOUND);
        fit_error(&mut e, true);
        assert_eq!(e.code, ErrorCode::INVALID_PARAMS);
    }
}
