package journal

// Field is one field of a journal entry. An entry's fields are a list, not
// a map: their order is kept and a name may repeat, as the protocol allows
// (journalctl -o json shows a repeated field as an array of its values;
// journald stores the same NAME=value pair only once per entry).
//
// Value is sent byte for byte. It may hold newlines, NUL bytes and invalid
// UTF-8; an empty value is a valid value.
type Field struct {
	Name  string
	Value []byte
}

// StringField returns a Field with the given name and text value.
func StringField(name, value string) Field {
	return Field{Name: name, Value: []byte(value)}
}

// maxFieldNameLen is journald's limit on a field name (journal_field_valid).
const maxFieldNameLen = 64

// ValidFieldName reports whether journald accepts name as the name of a
// field that a client sends: 1 to 64 characters from A–Z, 0–9 and '_', not
// starting with a digit, and not starting with '_', which marks the trusted
// fields only journald itself may set.
//
// journald drops a field with any other name without a word; [Writer.Send]
// refuses it instead.
func ValidFieldName(name string) bool {
	if len(name) == 0 || len(name) > maxFieldNameLen {
		return false
	}
	if c := name[0]; c == '_' || (c >= '0' && c <= '9') {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}
