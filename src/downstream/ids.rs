//! The IDE's request ids while their requests are in flight.
//!
//! JSON-RPC lets a client pick any number or string as an id, and expects it
//! back exactly. rmcp keeps ids as `i64` or string: a wider integer
//! (`18446744073709551615`, `1e29` written out) is refused, and a float form
//! (`1.0`, `1e2`) comes back rewritten. rmcp also keys its per-request state by
//! id, so a second request with the id of one still running overwrites the
//! first's, and one of the two answers is dropped.
//!
//! [`InFlight`] sits in the stdio transport between the two: every request the
//! IDE sends is admitted under its id's exact JSON text (the *key*), a key already
//! in flight is refused (the transport answers it with an error; the first request
//! keeps its result), and an id rmcp cannot carry exactly is swapped for an
//! internal one that is swapped back when the answer goes out. Pure data, no IO.

use std::collections::{HashMap, HashSet};

use rmcp::model::RequestId;

/// A request id as the IDE wrote it: one rmcp carries exactly, or the text of
/// one it cannot. Comparing keys compares ids as JSON-RPC does (strings by
/// value, numbers as written).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    Id(RequestId),
    Wide(Box<str>),
}

impl Key {
    /// The key of an id written `text` on the wire (valid JSON: a string or a number).
    pub fn from_wire(text: &str) -> Key {
        if text.starts_with('"') {
            if let Ok(s) = serde_json::from_str::<String>(text) {
                return Key::Id(RequestId::String(s.into()));
            }
        } else if let Ok(n) = text.parse::<i64>()
            // JSON has no leading zeros nor `+`: an integer that fits is written
            // as `n` writes it, but for `-0`.
            && text != "-0"
        {
            return Key::Id(RequestId::Number(n));
        }
        Key::Wide(text.into())
    }

    /// The id's JSON text.
    pub fn wire(&self) -> Box<str> {
        match self {
            Key::Id(RequestId::Number(n)) => n.to_string().into(),
            Key::Id(RequestId::String(s)) => serde_json::to_string(&**s).unwrap_or_default().into(),
            Key::Wide(text) => text.clone(),
        }
    }
}

/// Requests from the IDE that have not been answered yet.
#[derive(Debug)]
pub struct InFlight {
    /// Requests rmcp knows by the IDE's own id (nearly all of them: one hash
    /// lookup in, one out).
    own: HashSet<RequestId>,
    /// Requests rmcp knows by an internal id: internal id → the IDE's id, and back.
    mapped: HashMap<RequestId, Key>,
    mapped_keys: HashMap<Key, RequestId>,
    next: i64,
}

impl Default for InFlight {
    fn default() -> Self {
        InFlight {
            own: HashSet::new(),
            mapped: HashMap::new(),
            mapped_keys: HashMap::new(),
            // Internal ids are counted from the far end of the range, where
            // clients' own counters never are; a collision is avoided anyway.
            next: i64::MIN,
        }
    }
}

impl InFlight {
    /// Admit a request with id `key`. Returns the id to hand rmcp (the id itself
    /// when rmcp carries it and no internal id in flight has its value), or
    /// `None` when a request with this id is still in flight.
    pub fn admit(&mut self, key: Key) -> Option<RequestId> {
        if !self.mapped.is_empty() && self.mapped_keys.contains_key(&key) {
            return None;
        }
        if let Key::Id(id) = &key
            && !self.mapped.contains_key(id)
        {
            return self.own.insert(id.clone()).then(|| id.clone());
        }
        if let Key::Id(id) = &key
            && self.own.contains(id)
        {
            return None;
        }
        // Not representable, or its value is an internal id in flight.
        let id = self.fresh();
        self.mapped.insert(id.clone(), key.clone());
        self.mapped_keys.insert(key, id.clone());
        Some(id)
    }

    fn fresh(&mut self) -> RequestId {
        loop {
            let id = RequestId::Number(self.next);
            self.next = self.next.wrapping_add(1);
            if !self.own.contains(&id) && !self.mapped.contains_key(&id) {
                return id;
            }
        }
    }

    /// The answer to internal id `id` is going out: forget the request. Returns
    /// the id's wire text when it must replace the internal one.
    pub fn answered(&mut self, id: &RequestId) -> Option<Box<str>> {
        if !self.mapped.is_empty()
            && let Some(key) = self.mapped.remove(id)
        {
            self.mapped_keys.remove(&key);
            return Some(key.wire());
        }
        self.own.remove(id);
        None
    }

    /// Forget a request that will not be answered (the IDE cancelled it: rmcp
    /// drops the answer to a cancelled request).
    pub fn forget(&mut self, key: &Key) -> Option<RequestId> {
        if let Key::Id(id) = key
            && self.own.remove(id)
        {
            return Some(id.clone());
        }
        let id = self.mapped_keys.remove(key)?;
        self.mapped.remove(&id);
        Some(id)
    }

    pub fn len(&self) -> usize {
        self.own.len() + self.mapped.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(n: i64) -> RequestId {
        RequestId::Number(n)
    }

    #[test]
    fn keys_from_the_wire() {
        assert_eq!(Key::from_wire("7"), Key::Id(num(7)));
        assert_eq!(Key::from_wire("-9223372036854775808"), Key::Id(num(i64::MIN)));
        assert_eq!(Key::from_wire("\"a\\u0041\""), Key::Id(RequestId::String("aA".into())));
        for wide in [
            "-0",
            "1e2",
            "1.0",
            "9223372036854775808",
            "123456789012345678901234567890",
        ] {
            assert_eq!(Key::from_wire(wide), Key::Wide(wide.into()));
            assert_eq!(&*Key::from_wire(wide).wire(), wide);
        }
        assert_eq!(&*Key::from_wire("\"a\\u0041\"").wire(), "\"aA\"");
    }

    #[test]
    fn natural_ids_pass_unchanged_and_duplicates_are_refused() {
        let mut t = InFlight::default();
        assert_eq!(t.admit(Key::Id(num(7))), Some(num(7)));
        assert_eq!(t.admit(Key::Id(num(7))), None, "a duplicate in flight");
        assert_eq!(t.answered(&num(7)), None, "written as it is");
        assert!(t.is_empty());
        assert_eq!(t.admit(Key::Id(num(7))), Some(num(7)), "free again once answered");
    }

    #[test]
    fn wide_ids_get_internal_ones_and_come_back_exactly() {
        let mut t = InFlight::default();
        let wide = Key::from_wire("123456789012345678901234567890");
        let id = t.admit(wide.clone()).unwrap();
        assert_eq!(t.admit(wide.clone()), None);
        assert_eq!(t.answered(&id).as_deref(), Some("123456789012345678901234567890"));
        assert!(t.is_empty());
    }

    #[test]
    fn a_natural_id_equal_to_an_internal_one_is_mapped_too() {
        let mut t = InFlight::default();
        let internal = t.admit(Key::from_wire("1e2")).unwrap();
        let RequestId::Number(n) = internal else { panic!() };
        let same = t.admit(Key::Id(num(n))).unwrap();
        assert_ne!(same, internal);
        assert_eq!(t.answered(&same).as_deref(), Some(n.to_string().as_str()));
        assert_eq!(t.answered(&internal).as_deref(), Some("1e2"));
    }

    #[test]
    fn forgetting_frees_the_key() {
        let mut t = InFlight::default();
        let s = RequestId::String("a".into());
        t.admit(Key::Id(s.clone())).unwrap();
        assert_eq!(t.forget(&Key::Id(s.clone())), Some(s.clone()));
        assert_eq!(t.answered(&s), None);
        assert!(t.is_empty());
    }
}
