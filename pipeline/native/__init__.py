"""The C extensions (built by `make setup`): the ndjson scanner and RDP loops, the report's
feature space and exact t-SNE descent, with the same bits on every CPU (`_portable.h`)."""
