import { describe, expect, it } from 'vitest';
import { applyGroupPatch, applyUserPatch, parsePatch, parseScimFilter, parseUserResource } from './scim.js';

const USERS = { username: 'userName', externalid: 'externalId', id: 'id' };
const GROUPS = { displayname: 'displayName', externalid: 'externalId', id: 'id', 'members.value': 'memberId' };
const dana = { userName: 'dana@example.com', externalId: '00u1', displayName: 'Dana', email: 'dana@example.com', active: true };

describe('SCIM filters', () => {
  it('reads the eq filters Okta and Entra ID send', () => {
    expect(parseScimFilter('userName eq "test.user@okta.local"', USERS)).toEqual([{ attribute: 'userName', value: 'test.user@okta.local' }]);
    expect(parseScimFilter('externalId EQ "0a21f0f2"', USERS)).toEqual([{ attribute: 'externalId', value: '0a21f0f2' }]);
    expect(parseScimFilter('urn:ietf:params:scim:schemas:core:2.0:User:userName eq "a\\"b"', USERS)).toEqual([{ attribute: 'userName', value: 'a"b' }]);
    expect(parseScimFilter('id eq "grp_1" and members[value eq "usr_2"]', GROUPS)).toEqual([
      { attribute: 'id', value: 'grp_1' },
      { attribute: 'memberId', value: 'usr_2' },
    ]);
  });

  it.each([
    ['userName co "dana"', 'cannot read'],
    ['title eq "x"', 'not supported'],
    ['userName eq "a" or userName eq "b"', 'expected "and"'],
    ['userName eq dana', 'cannot read'],
    ['userName eq "' + 'x'.repeat(1000) + '"', 'at most 1000'],
    ['', 'cannot read'],
  ])('refuses %s as invalidFilter', (filter, message) => {
    expect(() => parseScimFilter(filter, USERS)).toThrow(expect.objectContaining({ details: expect.objectContaining({ scimType: 'invalidFilter' }) }));
    expect(() => parseScimFilter(filter, USERS)).toThrow(message);
  });
});

describe('SCIM users', () => {
  it('reads a user as Okta creates it, ignoring the password and what Lapse does not keep', () => {
    const fields = parseUserResource({
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
      userName: 'Test.User@okta.local',
      name: { givenName: 'Test', familyName: 'User' },
      emails: [{ primary: true, value: 'test.user@okta.local', type: 'work' }],
      displayName: 'Test User',
      locale: 'en-US',
      externalId: '00ujl29u0le5T6Aj10h7',
      groups: [],
      password: '1mz050nq',
      active: true,
    });
    expect(fields).toEqual({
      userName: 'test.user@okta.local',
      externalId: '00ujl29u0le5T6Aj10h7',
      displayName: 'Test User',
      email: 'test.user@okta.local',
      active: true,
    });
  });

  it("applies Okta's and Entra ID's deactivations", () => {
    expect(applyUserPatch(dana, parsePatch({ Operations: [{ op: 'replace', value: { active: false } }] })).active).toBe(false);
    expect(applyUserPatch(dana, parsePatch({ Operations: [{ op: 'Replace', path: 'active', value: 'False' }] })).active).toBe(false);
    expect(applyUserPatch({ ...dana, active: false }, parsePatch({ Operations: [{ op: 'Replace', path: 'active', value: 'True' }] })).active).toBe(true);
  });

  it("applies Entra ID's attribute updates and ignores attributes Lapse does not keep", () => {
    const next = applyUserPatch(
      dana,
      parsePatch({
        schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
        Operations: [
          { op: 'Replace', path: 'emails[type eq "work"].value', value: 'updated@example.com' },
          { op: 'Replace', path: 'name.familyName', value: 'updatedFamilyName' },
          { op: 'Add', path: 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager', value: 'x' },
          { op: 'Replace', path: 'userName', value: 'Dana.New@example.com' },
        ],
      }),
    );
    expect(next).toEqual({ ...dana, email: 'updated@example.com', userName: 'dana.new@example.com' });
  });

  it('refuses what it cannot apply, saying where', () => {
    expect(() => parsePatch({ Operations: [] })).toThrow('non-empty');
    expect(() => parsePatch({ Operations: [{ op: 'move', path: 'active', value: 1 }] })).toThrow('add, replace or remove');
    expect(() => parsePatch({ Operations: [{ op: 'remove' }] })).toThrow(
      expect.objectContaining({ details: expect.objectContaining({ scimType: 'noTarget' }) }),
    );
    expect(() => parsePatch({ schemas: ['urn:other'], Operations: [{ op: 'add', value: {} }] })).toThrow('PatchOp');
    expect(() => parsePatch({ Operations: Array.from({ length: 101 }, () => ({ op: 'add', value: {} })) })).toThrow('at most 100');
    expect(() => applyUserPatch(dana, parsePatch({ Operations: [{ op: 'replace', path: 'active', value: 'maybe' }] }))).toThrow('true or false');
    expect(() => applyUserPatch(dana, parsePatch({ Operations: [{ op: 'replace', path: 'userName', value: 'not a name!' }] }))).toThrow('not usable');
    expect(() => parseUserResource({ userName: 'x'.repeat(200) })).toThrow('1 to 128');
    expect(() => parseUserResource({ displayName: 'no user name' })).toThrow('userName');
  });
});

describe('SCIM groups', () => {
  const group = { displayName: 'sre', externalId: null, members: ['usr_a', 'usr_b'] };
  it("applies Okta's member add, member remove by filter, and rename", () => {
    let next = applyGroupPatch(group, parsePatch({ Operations: [{ op: 'add', path: 'members', value: [{ value: 'usr_c', display: 'c' }] }] }));
    expect(next.members).toEqual(['usr_a', 'usr_b', 'usr_c']);
    next = applyGroupPatch(next, parsePatch({ Operations: [{ op: 'remove', path: 'members[value eq "usr_a"]' }] }));
    expect(next.members).toEqual(['usr_b', 'usr_c']);
    next = applyGroupPatch(next, parsePatch({ Operations: [{ op: 'replace', value: { id: 'grp_1', displayName: 'sre-leads' } }] }));
    expect(next.displayName).toBe('sre-leads');
  });
  it("applies Entra ID's capitalised member Add and Remove", () => {
    let next = applyGroupPatch(group, parsePatch({ Operations: [{ op: 'Add', path: 'members', value: [{ $ref: null, value: 'usr_c' }] }] }));
    next = applyGroupPatch(next, parsePatch({ Operations: [{ op: 'Remove', path: 'members', value: [{ $ref: null, value: 'usr_b' }] }] }));
    expect(next.members).toEqual(['usr_a', 'usr_c']);
  });
  it('refuses paths groups do not have and removing the name', () => {
    expect(() => applyGroupPatch(group, parsePatch({ Operations: [{ op: 'replace', path: 'owner', value: 'x' }] }))).toThrow('not owner');
    expect(() => applyGroupPatch(group, parsePatch({ Operations: [{ op: 'remove', path: 'displayName' }] }))).toThrow('required');
    expect(() => applyGroupPatch(group, parsePatch({ Operations: [{ op: 'add', path: 'members', value: [{ display: 'no value' }] }] }))).toThrow('value');
  });
});
