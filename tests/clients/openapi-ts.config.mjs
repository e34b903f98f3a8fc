// @hey-api/openapi-ts: the fetch client, its types, zod schemas, and an SDK
// that validates each request and answer with them.
export default {
  input: 'openapi.json',
  output: 'client',
  plugins: [
    '@hey-api/client-fetch',
    '@hey-api/typescript',
    'zod',
    { name: '@hey-api/sdk', validator: true },
  ],
};
