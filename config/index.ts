export { loadConfig, redactConfig, ConfigError, type ConfigProblem } from './load';
export { schema, CONFIG_FILE_ENV, type Config, type SettingKey } from './schema';
