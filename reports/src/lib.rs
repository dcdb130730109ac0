//! Report writers (JUnit XML, JSON, Markdown, HTML) land with the scenario-harness issue.
