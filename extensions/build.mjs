// Bundle the annotator front-end into ONE ES module inside the Python package.
// `npm run build` (or `node build.mjs --watch`). The output is committed so pip needs no Node.
import * as esbuild from "esbuild";

const options = {
  entryPoints: ["src/annotator.ts"],
  outfile: "../workbench/widgets/static/annotator.js",
  bundle: true,
  format: "esm",
  target: "es2020",
  minify: process.argv.includes("--minify"),
  sourcemap: false,
  legalComments: "none",
  logLevel: "info",
};

if (process.argv.includes("--watch")) {
  const ctx = await esbuild.context(options);
  await ctx.watch();
} else {
  await esbuild.build(options);
}
