// Checks KQL texts with Microsoft's own parser and semantic analyzer, Kusto.Language
// (npm @kusto/language-service-next, pinned by package-lock.json).
//
// Reads one JSON request on stdin and writes one JSON answer on stdout, so the Python test pays
// for loading the 16 MB analyzer once for every text. The request is {"cases": {"name": CASE, ...}},
// each case checked on its own empty database, and the answer {"cases": {"name": RESULT, ...}}. A CASE:
//   { "database": "name",
//     "script":   [{"file", "text"}],  management commands replayed in order on an EMPTY database;
//                                     each is analyzed against what the commands before it created
//     "cluster":  [{"file", "text"}],  texts analyzed against the database the script left
//     "local":    {"functions": [{"file", "text"}], "texts": [{"file", "text"}]}
//                                     the local store's functions (its views are plain functions of
//                                     the views' names) and the texts it runs, against the same tables }
// A RESULT: {"diagnostics": [{"context", "file", "code", "severity", "message", "line", "snippet"}],
//            "checked": N, "entities": {"tables": [...], "materializedViews": [...], "functions": [...]}}
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";

const require = createRequire(import.meta.url);
require("@kusto/language-service-next/bridge.min.js");
require("@kusto/language-service-next/Kusto.Language.Bridge.min.js");
const K = globalThis.Kusto.Language;
const S = K.Symbols;

function check(request) {
  const diagnostics = [];
  let checked = 0;

  function list(enumerable) {
    const out = [];
    if (!enumerable) return out;
    for (let i = 0; i < enumerable.Count; i++) out.push(enumerable.getItem(i));
    return out;
  }

  function lineOf(text, offset) {
    return text.slice(0, offset).split("\n").length;
  }

  function analyze(context, item, globals) {
    checked += 1;
    const code = K.KustoCode.ParseAndAnalyze(item.text, globals);
    // Errors from parsing and binding, then the warnings of the built-in analyzers (KS5xx).
    const found = [...list(code.GetDiagnostics()), ...list(new K.Editor.KustoCodeService.ctor(code).GetAnalyzerDiagnostics(true))];
    for (const d of found) {
      const start = Math.max(0, d.Start);
      const lineStart = item.text.lastIndexOf("\n", start - 1) + 1;
      const lineEnd = item.text.indexOf("\n", start);
      diagnostics.push({
        context,
        file: item.file,
        code: d.Code,
        severity: d.Severity,
        message: d.Message,
        line: lineOf(item.text, start),
        snippet: item.text.slice(lineStart, lineEnd < 0 ? undefined : lineEnd).trim().slice(0, 200),
      });
    }
    return code;
  }

  // -- the replay: an empty database that each command changes as the cluster would -------------
  const tables = new Map(); // name -> {schema: "(a:string, ...)", doc}
  const views = new Map(); // name -> {columns, query}
  const functions = new Map(); // name -> {params, body, doc}

  function database(name, withFunctions = functions, withViews = views) {
    const members = [];
    for (const [n, t] of tables) members.push(new S.TableSymbol.$ctor7(n, t.schema, t.doc));
    for (const [n, v] of withViews) members.push(new S.MaterializedViewSymbol.$ctor2(n, v.columns, v.query, ""));
    for (const [n, f] of withFunctions) members.push(new S.FunctionSymbol.$ctor16(n, f.params, f.body, f.doc));
    return new S.DatabaseSymbol.$ctor1(name, members, false);
  }

  function globalsFor(db) {
    return K.GlobalState.Default.WithDatabase(db);
  }

  const CREATE_TABLE = /^\.create(?:-merge)?\s+table\s+(\w+)\s*\(([^)]*)\)/s;
  const CREATE_VIEW = /^\.create(?:-or-alter|\s+ifnotexists)?\s+(?:async\s+)?(?:ifnotexists\s+)?materialized-view\s+(?:with\s*\([^)]*\)\s*)?(\w+)\s+on\s+table\s+(\w+)\s*\{([\s\S]*)\}\s*$/;
  const CREATE_FUNCTION = /^\.create(?:-or-alter)?\s+function\s+(?:ifnotexists\s+)?(?:with\s*\(([\s\S]*?)\)\s*)?(\w+)\s*(\([^)]*\))\s*(\{[\s\S]*\})\s*$/;
  const DOCSTRING = /docstring\s*=\s*"([^"]*)"/;

  // A definition file starts with `//` comment lines; the command itself starts after them.
  function commandOf(text) {
    return text.split("\n").filter((line) => !line.trimStart().startsWith("//")).join("\n").trim();
  }

  function apply(command, globals) {
    let m = CREATE_TABLE.exec(command);
    if (m) {
      const columns = m[2].split(",").map((c) => c.trim()).filter(Boolean);
      const old = tables.get(m[1]);
      const merged = new Map((old ? old.columns : []).map((c) => [c.split(":")[0].trim(), c]));
      for (const c of columns) if (!merged.has(c.split(":")[0].trim())) merged.set(c.split(":")[0].trim(), c);
      const doc = (DOCSTRING.exec(command) || [])[1] || "";
      tables.set(m[1], { columns: [...merged.values()], schema: `(${[...merged.values()].join(", ")})`, doc });
      return true;
    }
    m = CREATE_VIEW.exec(command);
    if (m) {
      const code = K.KustoCode.ParseAndAnalyze(m[3], globals);
      views.set(m[1], { columns: code.ResultType ? code.ResultType.Columns : null, query: m[3].trim() });
      return true;
    }
    m = CREATE_FUNCTION.exec(command);
    if (m) {
      const doc = (DOCSTRING.exec(m[1] || "") || [])[1] || "";
      functions.set(m[2], { params: m[3], body: m[4], doc });
      return true;
    }
    return false; // mappings and policies change no symbol
  }

  const name = request.database || "db";
  let globals = globalsFor(database(name));
  for (const item of request.script || []) {
    analyze("script", item, globals);
    if (apply(commandOf(item.text), globals)) globals = globalsFor(database(name));
  }
  const cluster = globals;
  for (const item of request.cluster || []) analyze("cluster", item, cluster);

  // -- the local store: the same tables, views as plain functions ---------------------------------
  const local = request.local || { functions: [], texts: [] };
  const localFunctions = new Map();
  for (const item of local.functions || []) {
    const m = CREATE_FUNCTION.exec(commandOf(item.text));
    if (!m) throw new Error(`${item.file}: no .create-or-alter function command`);
    localFunctions.set(m[2], { params: m[3], body: m[4], doc: (DOCSTRING.exec(m[1] || "") || [])[1] || "" });
  }
  // On the local store every view is a plain function: the same names, no materialized views.
  const localGlobals = globalsFor(database(name, localFunctions, new Map()));
  for (const item of local.functions || []) analyze("local", item, localGlobals);
  for (const item of local.texts || []) analyze("local", item, localGlobals);

  return {
    diagnostics,
    checked,
    entities: { tables: [...tables.keys()], materializedViews: [...views.keys()], functions: [...functions.keys()] },
  };
}

const request = JSON.parse(readFileSync(0, "utf8"));
const answer = {};
for (const [caseName, item] of Object.entries(request.cases)) answer[caseName] = check(item);
process.stdout.write(JSON.stringify({ cases: answer }));
