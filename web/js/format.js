// Formatting for the languages Monaco has no formatter for (Markdown, YAML, GraphQL), with
// Prettier's standalone build and only the plugins they need. A bundle of its own, loaded
// the first time someone formats such a file.
import * as prettier from "prettier/standalone";
import * as markdown from "prettier/plugins/markdown";
import * as yaml from "prettier/plugins/yaml";
import * as graphql from "prettier/plugins/graphql";

// Monaco's language id → Prettier's parser.
const parsers = { markdown: "markdown", yaml: "yaml", graphql: "graphql" };

window.cloudosFormat = {
  /** The Monaco languages this formats. */
  languages: Object.keys(parsers),
  /** `text` formatted as `language`, or null when this does not format it. */
  async format(text, language) {
    const parser = parsers[language];
    if (!parser) return null;
    return prettier.format(text, { parser, plugins: [markdown, yaml, graphql], proseWrap: "preserve" });
  },
};
