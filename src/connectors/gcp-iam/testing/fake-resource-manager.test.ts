import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Binding, Policy } from '../iam-policy.js';
import { FakeResourceManager } from './fake-resource-manager.js';

/**
 * The fake refuses what Cloud Resource Manager refuses, in Google's error shape, over plain HTTP
 * (no client library in between), so the connector's tests cannot pass against a fake that is
 * more lenient than Google.
 */
const ADMIN = 'serviceAccount:admin@fake.iam.gserviceaccount.com';
const READER = 'serviceAccount:reader@fake.iam.gserviceaccount.com';
const PROJECT = 'projects/fake-project';

describe('fake Cloud Resource Manager', () => {
  let fake: FakeResourceManager;
  const tokens: Record<string, string> = {};
  beforeAll(async () => {
    fake = await FakeResourceManager.start();
    fake.addResource(PROJECT, [
      { role: 'roles/resourcemanager.projectIamAdmin', members: [ADMIN] },
      { role: 'roles/iam.securityReviewer', members: [READER] },
    ]);
    for (const member of [ADMIN, READER]) {
      fake.addIdentity(member);
      tokens[member] = (await fake.tokenSource(member)({} as never)).accessToken;
    }
  });
  afterAll(async () => fake?.close());

  async function call(method: string, body: unknown, as: string | null = ADMIN, resource = PROJECT) {
    const response = await fetch(`${fake.rootUrl}v3/${resource}:${method}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(as ? { authorization: `Bearer ${tokens[as]}` } : {}) },
      body: JSON.stringify(body),
    });
    return { status: response.status, body: (await response.json()) as Policy & { error?: { status: string; message: string; details?: unknown[] } } };
  }
  const read = async () => (await call('getIamPolicy', { options: { requestedPolicyVersion: 3 } })).body;
  const write = async (bindings: Binding[], extra: Partial<Policy> = {}) => {
    const { etag } = await read();
    return call('setIamPolicy', { policy: { version: 3, etag, bindings: [...((await read()).bindings ?? []), ...bindings], ...extra } });
  };
  const conditional = (expression: string, role = 'roles/compute.viewer', member = 'user:a@example.com'): Binding => ({
    role,
    members: [member],
    condition: { title: 't', expression },
  });

  it('refuses missing and unknown tokens (401) and callers without the permission (403 with ErrorInfo)', async () => {
    expect(await call('getIamPolicy', {}, null)).toMatchObject({ status: 401, body: { error: { status: 'UNAUTHENTICATED' } } });
    tokens.stranger = 'ya29.made-up';
    expect(await call('getIamPolicy', {}, 'stranger')).toMatchObject({ status: 401 });
    expect(await call('setIamPolicy', { policy: { bindings: [] } }, READER)).toMatchObject({
      status: 403,
      body: {
        error: {
          status: 'PERMISSION_DENIED',
          message:
            "Permission 'resourcemanager.projects.setIamPolicy' denied on resource '//cloudresourcemanager.googleapis.com/projects/fake-project' (or it may not exist).",
          details: [
            expect.objectContaining({
              reason: 'IAM_PERMISSION_DENIED',
              metadata: expect.objectContaining({ permission: 'resourcemanager.projects.setIamPolicy' }),
            }),
          ],
        },
      },
    });
    expect(await call('getIamPolicy', {}, ADMIN, 'projects/nowhere')).toMatchObject({ status: 403 });
  });

  it('refuses a stale etag with 409 ABORTED, or 412 when told to', async () => {
    const { etag } = await read();
    expect(await write([conditional('request.time < timestamp("2030-01-01T00:00:00Z")')])).toMatchObject({ status: 200 });
    const stale = await call('setIamPolicy', { policy: { version: 3, etag, bindings: [] } });
    expect(stale).toMatchObject({
      status: 409,
      body: { error: { status: 'ABORTED', message: expect.stringMatching(/^There were concurrent policy changes/) } },
    });
    fake.injected.conflictStatus = 412;
    expect(await call('setIamPolicy', { policy: { version: 3, etag, bindings: [] } })).toMatchObject({
      status: 412,
      body: { error: { status: 'FAILED_PRECONDITION' } },
    });
    fake.injected.conflictStatus = 409;
  });

  it('refuses what IAM refuses in a policy (400 INVALID_ARGUMENT), changing nothing', async () => {
    const before = fake.policy(PROJECT);
    const cases: [Binding[], Partial<Policy>, RegExp][] = [
      [[conditional('request.time < timestamp("2030-01-01T00:00:00Z")')], { version: 1 }, /require policy version 3/],
      [[conditional('request.time < timestamp("2030-01-01T00:00:00Z")', 'roles/owner')], {}, /not supported for basic roles/],
      [[conditional('request.time < timestamp("2030-01-01T00:00:00Z")', 'roles/compute.viewer', 'allUsers')], {}, /allUsers/],
      [[conditional('request.time < timestamp("tomorrow")')], {}, /invalid timestamp/],
      [[conditional('request.time < timestamp("2030-01-01T00:00:00Z"')], {}, /does not parse/],
      [[{ role: 'roles/compute.viewer', members: ['alice@example.com'] }], {}, /Invalid principal/],
      [[{ role: 'roles/compute.viewer', members: ['serviceAccount:bot@example.com'] }], {}, /Invalid principal/],
      [[{ role: 'roles/compute.viewer', members: [] }], {}, /at least one principal/],
      [[{ role: 'roles/made.up', members: ['user:a@example.com'] }], {}, /Role roles\/made\.up is not supported/],
      [
        [{ role: 'roles/browser', members: Array.from({ length: 1_500 }, (_, i) => `user:u${i}@example.com`) }],
        {},
        /larger than the maximum allowed size 1500/,
      ],
    ];
    for (const [bindings, extra, message] of cases) {
      expect(await write(bindings, extra), String(message)).toMatchObject({
        status: 400,
        body: { error: { status: 'INVALID_ARGUMENT', message: expect.stringMatching(message) } },
      });
    }
    expect(fake.policy(PROJECT)).toEqual(before);
  });

  it('hides conditions from version-1 readers, and refuses their write-back', async () => {
    const v1 = (await call('getIamPolicy', {})).body;
    expect(v1.version).toBe(1);
    expect(v1.bindings?.some((b) => b.condition)).toBe(false);
    expect(v1.bindings?.map((b) => b.role)).toContainEqual(expect.stringMatching(/^roles\/compute\.viewer_withcond_[0-9a-f]+$/));
    expect(await call('setIamPolicy', { policy: v1 })).toMatchObject({
      status: 400,
      body: { error: { message: expect.stringMatching(/_withcond_.* is not supported/) } },
    });
  });

  it('answers testIamPermissions from the caller\u2019s bindings and their conditions', async () => {
    fake.addIdentity('user:a@example.com');
    tokens.a = (await fake.tokenSource('user:a@example.com')({} as never)).accessToken;
    const asA = (await call('testIamPermissions', { permissions: ['compute.instances.list', 'compute.instances.delete'] }, 'a')).body as {
      permissions?: string[];
    };
    expect(asA.permissions).toEqual(['compute.instances.list']);
    fake.writeBehindBack(PROJECT, (bindings) => {
      for (const b of bindings) if (b.condition) b.condition.expression = 'request.time < timestamp("2020-01-01T00:00:00Z")';
    });
    expect((await call('testIamPermissions', { permissions: ['compute.instances.list'] }, 'a')).body).toEqual({});
  });
});
