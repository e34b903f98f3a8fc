// Drives a live taskgate through the TypeScript client @hey-api/openapi-ts
// generated from its /openapi.json (fetch client, zod validating every
// request and answer): signup, the password grant on /token, /users/me, a
// task created and listed, and a 422 whose `fields` name the field.
// Usage: node flow.js BASE_URL. Exits non-zero on the first step that does
// not answer as docs/API.md says.
import { client } from './client/client.gen.js';
import { createTask, listTasks, me, signup, token } from './client/sdk.gen.js';

function check(what: string, ok: boolean, got: unknown): void {
  if (!ok) {
    console.error(`typescript client: ${what}: got ${JSON.stringify(got)}`);
    process.exit(1);
  }
}

async function main(baseUrl: string): Promise<void> {
  const email = `ts-${Math.random().toString(16).slice(2, 14)}@example.com`;
  const password = 'generated clients work';
  let accessToken = '';
  client.setConfig({ baseUrl, auth: () => accessToken });

  const created = await signup({ body: { email, password, full_name: '  Ada  ' } });
  check('signup is 201 with the user', created.response.status === 201 && created.data?.email === email, created.error);
  check('the name is trimmed', created.data?.full_name === 'Ada', created.data);

  const pair = await token({ body: { username: email, password } });
  check('/token answers a bearer pair', pair.data?.token_type === 'bearer', pair.error);
  accessToken = pair.data!.access_token;

  const who = await me();
  check('/users/me is the user', who.data?.email === email, who.error);

  const made = await createTask({ body: { title: 'Buy milk', due_date: '2026-12-24' } });
  check('a task is created', made.response.status === 201 && made.data?.title === 'Buy milk', made.error);
  check('Location names it', made.response.headers.get('location') === `/tasks/${made.data!.id}`, made.data);

  const listed = await listTasks({ query: { limit: 10 } });
  check('the list holds it', listed.data?.map((t) => t.title).join() === 'Buy milk', listed.data);
  check('X-Total-Count counts it', listed.response.headers.get('x-total-count') === '1', listed.data);

  // zod refuses what the document rules out before anything is sent...
  let refusedHere = false;
  try {
    await createTask({ body: { title: 'x'.repeat(201) } });
  } catch {
    refusedHere = true;
  }
  check('a 201-character title is refused by the client', refusedHere, null);

  // ...and a rule stated in words only (a common password) is the server's 422.
  const refused = await signup({ body: { email: `x-${email}`, password: 'password123' } });
  check('a common password is 422', refused.response.status === 422, refused.response.status);
  check('the error code', refused.error?.error === 'validation_error', refused.error);
  check('fields name the password', typeof refused.error?.fields?.password === 'string', refused.error);
  console.log('typescript client: flow passed');
}

main(process.argv[2]).catch((e: unknown) => {
  console.error('typescript client:', e);
  process.exit(1);
});
