//! Config files: INI text into typed, validated project, engine and task settings.
