// Builds dist/esm (ES modules) and dist/cjs (CommonJS), each with type
// declarations, from the same sources. tsc type-checks once and emits the
// ES modules and declarations; the CommonJS files are the same modules
// transpiled file by file (the sources are isolatedModules-clean). dist/cjs
// gets its own package.json so Node loads its files as CommonJS inside this
// "type": "module" package.
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const ts = createRequire(import.meta.url)("typescript");
const src = join(root, "src");
const esm = join(root, "dist", "esm");
const cjs = join(root, "dist", "cjs");

rmSync(join(root, "dist"), { recursive: true, force: true });
try {
  execFileSync(process.execPath, [join(root, "node_modules", "typescript", "bin", "tsc"), "-p", root], {
    stdio: "inherit",
  });
} catch {
  process.exit(1); // tsc has printed the errors
}

const files = (dir) =>
  readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? files(join(dir, entry.name)) : [join(dir, entry.name)],
  );
const options = {
  ...ts.getParsedCommandLineOfConfigFile(join(root, "tsconfig.json"), {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic() {} })
    .options,
  module: ts.ModuleKind.CommonJS,
  moduleResolution: ts.ModuleResolutionKind.Node10,
  declaration: false,
};
for (const file of files(src).filter((f) => f.endsWith(".ts"))) {
  const path = relative(src, file).replace(/\.ts$/, "");
  mkdirSync(dirname(join(cjs, path)), { recursive: true });
  const { outputText } = ts.transpileModule(readFileSync(file, "utf8"), { compilerOptions: options, fileName: file });
  writeFileSync(join(cjs, `${path}.js`), outputText);
  copyFileSync(join(esm, `${path}.d.ts`), join(cjs, `${path}.d.ts`));
}
writeFileSync(join(cjs, "package.json"), '{\n  "type": "commonjs"\n}\n');
