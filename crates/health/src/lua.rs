//! Argo CD-compatible Lua health checks, run in a sandbox. The dialect is
//! the one Argo CD's scripts are written for: gopher-lua's, Lua 5.1 plus
//! `goto`, which LuaJIT's interpreter provides (its JIT compiler is turned
//! off, so the instruction budget is checked everywhere). Only the base,
//! table, string and math libraries and `os.time`/`os.date` (as Argo CD's
//! safe `os`; no io, the rest of os, package, debug, ffi, no way
//! to load code), a memory limit, an instruction budget, and pattern
//! matching limited to subjects of bounded length. A fresh interpreter runs
//! every check, so nothing carries over from one object to the next.

use std::cell::Cell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use gitplane_object::Object;
use mlua::serde::SerializeOptions;
use mlua::{HookTriggers, Lua, LuaOptions, LuaSerdeExt, StdLib, VmState};
use serde_json::Value;

use crate::{Health, HealthError, HealthStatus};

/// What one health.lua run may use.
#[derive(Debug, Clone, Copy)]
pub struct LuaLimits {
    /// Bytes of memory the interpreter may allocate.
    pub memory_bytes: usize,
    /// Lua VM instructions it may execute.
    pub instructions: u64,
}

impl Default for LuaLimits {
    fn default() -> Self {
        LuaLimits {
            memory_bytes: 16 << 20,
            instructions: 10_000_000,
        }
    }
}

/// Instructions between two budget checks.
const HOOK_EVERY: u32 = 1000;

/// Subjects longer than this are refused by `string.find`, `match`, `gmatch`
/// and `gsub`: Lua's pattern matcher runs in C, out of reach of the
/// instruction budget, and backtracks on long inputs.
const PATTERN_SUBJECT_LIMIT: usize = 65_536;

/// Runs before every script: takes away what a health check must not have.
/// Compiled traces would not count instructions, so the JIT is off; of
/// `os`, only `time` and `date` stay, as in Argo CD's safe `os`, which
/// `require("os")` returns (Argo CD's action scripts start so).
const PRELUDE: &str = r#"
jit.off()
jit.flush()
jit = nil
os = {time = os.time, date = os.date}
for _, name in ipairs({"dofile", "loadfile", "load", "loadstring", "require",
                       "module", "collectgarbage", "getfenv", "setfenv",
                       "newproxy", "gcinfo", "print"}) do
  _G[name] = nil
end
local safe_os = os
require = function(name)
  if name == "os" then
    return safe_os
  end
  error("module '" .. tostring(name) .. "' not found", 2)
end
string.dump = nil
for _, name in ipairs({"find", "match", "gmatch", "gsub"}) do
  local original = string[name]
  string[name] = function(s, ...)
    if type(s) == "string" and #s > LIMIT then
      error("string." .. name .. ": subject longer than " .. LIMIT .. " bytes", 2)
    end
    return original(s, ...)
  end
end
"#;

/// A sandboxed interpreter with `obj` set.
pub(crate) fn sandbox(object: &Value, limits: LuaLimits) -> mlua::Result<Lua> {
    let lua = Lua::new_with(
        StdLib::TABLE | StdLib::STRING | StdLib::MATH | StdLib::OS | StdLib::JIT,
        LuaOptions::new(),
    )?;
    lua.set_memory_limit(limits.memory_bytes)?;
    let executed = Rc::new(Cell::new(0u64));
    let budget = limits.instructions;
    lua.set_hook(
        HookTriggers::new().every_nth_instruction(HOOK_EVERY),
        move |_, _| {
            executed.set(executed.get() + u64::from(HOOK_EVERY));
            if executed.get() > budget {
                return Err(mlua::Error::runtime(format!(
                    "exceeded its budget of {budget} instructions"
                )));
            }
            Ok(VmState::Continue)
        },
    )?;
    let prelude = format!("local LIMIT = {PATTERN_SUBJECT_LIMIT}\n{PRELUDE}");
    lua.load(prelude).set_name("prelude").exec()?;
    // Plain tables, as gopher-lua gives Argo CD's scripts: a script may copy
    // a table's metatable (`setmetatable(t, getmetatable(obj))`).
    let options = SerializeOptions::new()
        .serialize_none_to_null(false)
        .serialize_unit_to_null(false)
        .set_array_metatable(false);
    lua.globals()
        .set("obj", lua.to_value_with(object, options)?)?;
    Ok(lua)
}

/// Runs a health.lua script on an object. A script that returns nothing
/// gives the object no health, as in Argo CD.
pub(crate) fn run_script(
    source: &str,
    name: &str,
    object: &Value,
    limits: LuaLimits,
) -> Result<Option<Health>, String> {
    let fail = |e: mlua::Error| format!("{name}: {}", first_line(&e.to_string()));
    let lua = sandbox(object, limits).map_err(fail)?;
    let returned: mlua::Value = lua.load(source).set_name(name).eval().map_err(fail)?;
    let table = match returned {
        mlua::Value::Nil => return Ok(None),
        mlua::Value::Table(t) => t,
        other => {
            return Err(format!(
                "{name}: returned {} instead of a table with status and message",
                other.type_name()
            ));
        }
    };
    let status: Option<String> = table.get("status").map_err(fail)?;
    let message: Option<String> = table.get("message").map_err(fail)?;
    let status = status.ok_or_else(|| format!("{name}: returned no status"))?;
    let status = HealthStatus::parse(&status)
        .ok_or_else(|| format!("{name}: returned the unknown status {status:?}"))?;
    Ok(Some(Health::new(status, message.unwrap_or_default())))
}

/// Runs a script (a resource action or its discovery) on an object, with
/// `actionParams` set when given, and returns what it returned as JSON.
/// An error the script raises is returned as its message alone, as Argo CD
/// reports it (`error("invalid number", 0)` is `invalid number`).
pub(crate) fn run_to_json(
    source: &str,
    name: &str,
    object: &Value,
    params: Option<&serde_json::Map<String, Value>>,
    limits: LuaLimits,
) -> Result<Value, String> {
    let fail = |e: mlua::Error| match &e {
        mlua::Error::RuntimeError(message) => first_line(message).to_string(),
        mlua::Error::CallbackError { cause, .. } => first_line(&cause.to_string()).to_string(),
        _ => format!("{name}: {}", first_line(&e.to_string())),
    };
    let lua = sandbox(object, limits).map_err(fail)?;
    if let Some(params) = params {
        let table = lua.to_value(params).map_err(fail)?;
        lua.globals().set("actionParams", table).map_err(fail)?;
    }
    let returned: mlua::Value = lua.load(source).set_name(name).eval().map_err(fail)?;
    if !returned.is_table() {
        return Err(format!(
            "{name}: returned {} instead of a table",
            returned.type_name()
        ));
    }
    let options = mlua::serde::DeserializeOptions::new()
        .deny_unsupported_types(false)
        .sort_keys(true);
    lua.from_value_with(returned, options).map_err(fail)
}

/// Lua errors carry a traceback; the first line says what happened.
fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}

/// Argo CD's settings key holding every resource override as YAML.
const LEGACY_KEY: &str = "resource.customizations";
/// Argo CD's settings keys holding one kind's health script.
const HEALTH_KEY: &str = "resource.customizations.health.";

/// `group<sep>Kind` (or a bare `Kind`, of the core group) as (group, kind).
pub(crate) fn group_kind_of(text: &str, separator: char) -> (String, String) {
    match text.rsplit_once(separator) {
        Some((group, kind)) => (group.to_string(), kind.to_string()),
        None => (String::new(), text.to_string()),
    }
}

struct Script {
    path: PathBuf,
    source: String,
}

/// The loaded health.lua scripts, by group and kind.
#[derive(Default)]
pub struct Customizations {
    scripts: HashMap<(String, String), Script>,
    limits: LuaLimits,
}

fn read_error(path: &Path, e: impl std::fmt::Display) -> HealthError {
    HealthError::Read {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// A group's directory name as a group pattern: `_` and `core` name the
/// core group; elsewhere `_` stands for any text, as in Argo CD's
/// `_.crossplane.io` (every group under crossplane.io).
pub(crate) fn group_of_dir(name: &str) -> String {
    match name {
        "_" | "core" => String::new(),
        other => other.replace('_', "*"),
    }
}

/// A kind's directory name as a kind pattern: `_` is any kind.
fn kind_of_dir(name: &str) -> String {
    name.replace('_', "*")
}

/// Whether `text` matches `pattern`, where `*` stands for any text.
fn glob_match(pattern: &str, text: &str) -> bool {
    let Some((head, rest)) = pattern.split_once('*') else {
        return pattern == text;
    };
    let Some(mut remaining) = text.strip_prefix(head) else {
        return false;
    };
    let mut parts: Vec<&str> = rest.split('*').collect();
    let last = parts.pop().unwrap_or_default();
    for part in parts {
        match remaining.find(part) {
            Some(at) => remaining = &remaining[at + part.len()..],
            None => return false,
        }
    }
    remaining.len() >= last.len() && remaining.ends_with(last)
}

/// Checks that a script compiles (in a sandbox, running nothing).
pub(crate) fn compile(path: &Path, source: &str) -> Result<(), HealthError> {
    let lua = Lua::new_with(StdLib::NONE, LuaOptions::new()).map_err(|e| read_error(path, e))?;
    lua.load(source)
        .set_name(path.display().to_string())
        .into_function()
        .map(drop)
        .map_err(|e| HealthError::Script {
            path: path.display().to_string(),
            message: first_line(&e.to_string()).to_string(),
        })
}

impl Customizations {
    /// Loads `<dir>/<group>/<Kind>/health.lua` for every group and kind,
    /// checking that each compiles.
    pub fn load(dir: &Path, limits: LuaLimits) -> Result<Self, HealthError> {
        let mut scripts = HashMap::new();
        for group in std::fs::read_dir(dir).map_err(|e| read_error(dir, e))? {
            let group = group.map_err(|e| read_error(dir, e))?.path();
            if !group.is_dir() {
                continue;
            }
            for kind in std::fs::read_dir(&group).map_err(|e| read_error(&group, e))? {
                let kind = kind.map_err(|e| read_error(&group, e))?.path();
                let path = kind.join("health.lua");
                if !path.is_file() {
                    continue;
                }
                let source = std::fs::read_to_string(&path).map_err(|e| read_error(&path, e))?;
                compile(&path, &source)?;
                let name = |p: &Path| {
                    p.file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default()
                };
                let key = (group_of_dir(&name(&group)), kind_of_dir(&name(&kind)));
                scripts.insert(key, Script { path, source });
            }
        }
        Ok(Customizations { scripts, limits })
    }

    /// The health scripts of Argo CD's settings ConfigMap (`argocd-cm`):
    /// keys `resource.customizations.health.<group>_<Kind>` (or `.<Kind>`
    /// for the core group) holding a script, and the older single key
    /// `resource.customizations`, a YAML map from `<group>/<Kind>` to
    /// `{health.lua: …}`; the split keys win, as in Argo CD. Each script
    /// must compile; errors name the key.
    pub fn from_argocd_cm(
        data: &serde_json::Map<String, Value>,
        limits: LuaLimits,
    ) -> Result<Self, HealthError> {
        let mut scripts = HashMap::new();
        if let Some(Value::String(legacy)) = data.get(LEGACY_KEY) {
            let name = format!("argocd-cm {LEGACY_KEY}");
            let overrides = crate::testfile::first_document(legacy.as_bytes(), &name)
                .map_err(|e| read_error(Path::new(&name), e))?;
            for (group_kind, over) in overrides.as_object().into_iter().flatten() {
                if let Some(Value::String(source)) = over.get("health.lua") {
                    let key = group_kind_of(group_kind, '/');
                    let path = PathBuf::from(format!("argocd-cm {LEGACY_KEY} {group_kind}"));
                    compile(&path, source)?;
                    scripts.insert(
                        key,
                        Script {
                            path,
                            source: source.clone(),
                        },
                    );
                }
            }
        }
        for (key, value) in data {
            let (Some(group_kind), Value::String(source)) = (key.strip_prefix(HEALTH_KEY), value)
            else {
                continue;
            };
            let path = PathBuf::from(format!("argocd-cm {key}"));
            compile(&path, source)?;
            scripts.insert(
                group_kind_of(group_kind, '_'),
                Script {
                    path,
                    source: source.clone(),
                },
            );
        }
        Ok(Customizations { scripts, limits })
    }

    /// Adds `other`'s scripts, replacing this one's for the same kinds.
    pub fn overridden_by(mut self, other: Customizations) -> Self {
        self.scripts.extend(other.scripts);
        self
    }

    /// The script for a group and kind: one named exactly, else the first
    /// (in key order) whose patterns match (`*.crossplane.io`, `*`).
    fn script_for(&self, group: &str, kind: &str) -> Option<&Script> {
        let exact = (group.to_string(), kind.to_string());
        if let Some(script) = self.scripts.get(&exact) {
            return Some(script);
        }
        let mut patterns: Vec<_> = self
            .scripts
            .iter()
            .filter(|((g, k), _)| g.contains('*') || k.contains('*'))
            .collect();
        patterns.sort_by(|a, b| a.0.cmp(b.0));
        patterns
            .into_iter()
            .find(|((g, k), _)| glob_match(g, group) && glob_match(k, kind))
            .map(|(_, script)| script)
    }

    /// How many scripts are loaded.
    pub fn len(&self) -> usize {
        self.scripts.len()
    }

    /// Whether none are.
    pub fn is_empty(&self) -> bool {
        self.scripts.is_empty()
    }

    /// The customization's verdict, if there is one for this kind (which
    /// may be no health at all); a failing script is an error message.
    pub(crate) fn check(&self, object: &Object) -> Option<Result<Option<Health>, String>> {
        let script = self.script_for(object.group(), object.kind())?;
        let name = script.path.display().to_string();
        Some(run_script(
            &script.source,
            &name,
            &object.to_value(),
            self.limits,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(source: &str) -> Result<Health, String> {
        run_script(
            source,
            "test.lua",
            &json!({"kind": "Thing", "status": {"ready": true, "n": null}}),
            LuaLimits::default(),
        )
        .and_then(|health| health.ok_or_else(|| "no health".to_string()))
    }

    #[test]
    fn reads_obj_and_returns_health() {
        let health = run(r#"
            hs = {}
            if obj.status.ready and obj.status.n == nil then
              hs.status = "Healthy"; hs.message = "ready"
            else
              hs.status = "Progressing"
            end
            return hs"#)
        .unwrap();
        assert_eq!(health, Health::new(HealthStatus::Healthy, "ready"));
    }

    #[test]
    fn escapes_are_stopped() {
        for (name, source) in [
            ("io", "io.open('/etc/passwd')"),
            ("os", "os.execute('touch /tmp/gitplane-escaped')"),
            ("load", "load('return 1')()"),
            ("loadstring", "loadstring('return 1')()"),
            ("require", "require('io')"),
            (
                "require os",
                "require('os').execute('touch /tmp/gitplane-escaped')",
            ),
            ("dofile", "dofile('/etc/passwd')"),
            ("dump", "string.dump(function() end)"),
            ("debug", "debug.getinfo(1)"),
            ("package", "package.loadlib('libc.so.6', 'system')"),
            ("os.getenv", "os.getenv('HOME')"),
            ("os.remove", "os.remove('/tmp/x')"),
            ("jit", "jit.on()"),
            ("ffi", "ffi.C.system('touch /tmp/gitplane-escaped')"),
        ] {
            let error = run(source).expect_err(name);
            assert!(
                error.contains("attempt to")
                    || error.contains("nil")
                    || error.contains("not found"),
                "{name}: {error}"
            );
        }
        assert!(!Path::new("/tmp/gitplane-escaped").exists());
    }

    #[test]
    fn infinite_loops_and_huge_allocations_are_stopped() {
        let error = run("while true do end").unwrap_err();
        assert!(error.contains("budget"), "{error}");
        let error = run("local t = {} for i = 1, 1e9 do t[i] = string.rep('x', 1000) .. i end")
            .unwrap_err();
        assert!(
            error.contains("memory") || error.contains("budget"),
            "{error}"
        );
        let error = run("local s = string.rep('x', 1e9)").unwrap_err();
        assert!(error.contains("memory"), "{error}");
        let error = run(
            "local s = string.rep('a', 100000) return {status = s:find('(a*)*b') and 'Healthy'}",
        )
        .unwrap_err();
        assert!(error.contains("subject longer than"), "{error}");
    }

    #[test]
    fn a_script_returning_nothing_gives_no_health() {
        let returned = run_script("return nil", "t.lua", &json!({}), LuaLimits::default());
        assert_eq!(returned, Ok(None));
    }

    #[test]
    fn patterns_match_as_globs() {
        assert!(glob_match("*.crossplane.io", "ec2.aws.crossplane.io"));
        assert!(!glob_match("*.crossplane.io", "crossplane.io.evil"));
        assert!(glob_match("*", "Anything"));
        assert!(glob_match("a*c*e", "abcde"));
        assert!(!glob_match("a*c*e", "abcd"));
        assert!(glob_match("exact", "exact"));
        assert!(!glob_match("ab*ba", "aba"));
    }

    #[test]
    fn time_and_date_are_there_as_in_argo_cd() {
        let health = run(
            "local t = os.time({year = 2020, month = 1, day = 2, hour = 0})
             return {status = 'Healthy', message = os.date('%Y-%m-%d', t)}",
        )
        .unwrap();
        assert_eq!(health, Health::new(HealthStatus::Healthy, "2020-01-02"));
    }

    #[test]
    fn bad_results_are_errors() {
        assert!(run("return 1").unwrap_err().contains("instead of a table"));
        assert!(run("return {}").unwrap_err().contains("no status"));
        assert!(
            run("return {status = 'Fine'}")
                .unwrap_err()
                .contains("unknown status")
        );
        assert!(run("error('boom')").unwrap_err().contains("boom"));
    }
}
