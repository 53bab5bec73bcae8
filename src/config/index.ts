export { configSchema, defaultAgentId, sourceSchema, storageSchema, type Config, type S3StorageConfig, type SourceConfig, type StorageConfig } from './schema.js';
export { BUILT_IN_SOURCE, DEFAULT_CONFIG_PATH, formatProblems, loadConfig, validateConfig, type LoadedConfig, type ValidationResult } from './load.js';
export { readSecret, type SecretRef } from './secrets.js';
export { renderExampleConfig } from './example.js';
export { parseYamlText } from './yamlText.js';
