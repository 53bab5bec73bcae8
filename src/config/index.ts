export { configSchema, defaultAgentId, type Config, type SourceConfig } from './schema.js';
export { BUILT_IN_SOURCE, DEFAULT_CONFIG_PATH, formatProblems, loadConfig, validateConfig, type LoadedConfig, type ValidationResult } from './load.js';
export { readSecret, type SecretRef } from './secrets.js';
export { renderExampleConfig } from './example.js';
