/** The local API's address when the configuration names none (schema.ts and endpoint.ts share it). */
export const API_DEFAULT_HOST = '127.0.0.1';
export const API_DEFAULT_PORT = 8750;
