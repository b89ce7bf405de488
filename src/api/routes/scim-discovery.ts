import { SCIM_GROUP_SCHEMA, SCIM_LIMITS, SCIM_USER_SCHEMA } from '../../domain/scim.js';

/** The SCIM discovery documents (RFC 7643 §5-7): what Lapse's SCIM server supports. */

export const SCIM_SERVICE_PROVIDER_CONFIG = {
  schemas: ['urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig'],
  documentationUri: 'https://github.com/lapse-dev/lapse/blob/main/docs/identity.md',
  patch: { supported: true },
  bulk: { supported: false, maxOperations: 0, maxPayloadSize: 0 },
  filter: { supported: true, maxResults: SCIM_LIMITS.pageSize },
  changePassword: { supported: false },
  sort: { supported: false },
  etag: { supported: false },
  authenticationSchemes: [
    {
      type: 'oauthbearertoken',
      name: 'Bearer token',
      description: 'A SCIM token from `lapse admin scim-token create`, sent as Authorization: Bearer',
      primary: true,
    },
  ],
  meta: { resourceType: 'ServiceProviderConfig', location: '/scim/v2/ServiceProviderConfig' },
} as const;

export const SCIM_RESOURCE_TYPES = [
  {
    schemas: ['urn:ietf:params:scim:schemas:core:2.0:ResourceType'],
    id: 'User',
    name: 'User',
    endpoint: '/Users',
    description: 'A person who may ask for and approve access',
    schema: SCIM_USER_SCHEMA,
    schemaExtensions: [],
    meta: { resourceType: 'ResourceType', location: '/scim/v2/ResourceTypes/User' },
  },
  {
    schemas: ['urn:ietf:params:scim:schemas:core:2.0:ResourceType'],
    id: 'Group',
    name: 'Group',
    endpoint: '/Groups',
    description: 'A group policies and approval stages name',
    schema: SCIM_GROUP_SCHEMA,
    schemaExtensions: [],
    meta: { resourceType: 'ResourceType', location: '/scim/v2/ResourceTypes/Group' },
  },
] as const;

const attribute = (name: string, extra: Record<string, unknown> = {}) => ({
  name,
  type: 'string',
  multiValued: false,
  required: false,
  caseExact: false,
  mutability: 'readWrite',
  returned: 'default',
  uniqueness: 'none',
  ...extra,
});

export const SCIM_SCHEMAS = [
  {
    schemas: ['urn:ietf:params:scim:schemas:core:2.0:Schema'],
    id: SCIM_USER_SCHEMA,
    name: 'User',
    description: 'A Lapse user (attributes Lapse keeps; others are accepted and ignored)',
    attributes: [
      attribute('userName', { required: true, uniqueness: 'server' }),
      attribute('displayName'),
      attribute('active', { type: 'boolean' }),
      attribute('externalId', { caseExact: true }),
      {
        ...attribute('emails', { type: 'complex', multiValued: true }),
        subAttributes: [attribute('value'), attribute('type'), attribute('primary', { type: 'boolean' })],
      },
      {
        ...attribute('groups', { type: 'complex', multiValued: true, mutability: 'readOnly' }),
        subAttributes: [attribute('value', { mutability: 'readOnly' }), attribute('display', { mutability: 'readOnly' })],
      },
    ],
    meta: { resourceType: 'Schema', location: `/scim/v2/Schemas/${SCIM_USER_SCHEMA}` },
  },
  {
    schemas: ['urn:ietf:params:scim:schemas:core:2.0:Schema'],
    id: SCIM_GROUP_SCHEMA,
    name: 'Group',
    description: 'A group (its displayName is what policies and approval stages name)',
    attributes: [
      attribute('displayName', { required: true, uniqueness: 'server' }),
      attribute('externalId', { caseExact: true }),
      {
        ...attribute('members', { type: 'complex', multiValued: true }),
        subAttributes: [attribute('value', { mutability: 'immutable' }), attribute('display', { mutability: 'readOnly' })],
      },
    ],
    meta: { resourceType: 'Schema', location: `/scim/v2/Schemas/${SCIM_GROUP_SCHEMA}` },
  },
] as const;
