package grafanatest

import (
	"net/http"
	"sort"
	"strconv"
)

// dsCommand is the body of POST and PUT data source calls.
type dsCommand struct {
	UID            string            `json:"uid"`
	Name           string            `json:"name"`
	Type           string            `json:"type"`
	URL            string            `json:"url"`
	Access         string            `json:"access"`
	IsDefault      bool              `json:"isDefault"`
	JSONData       map[string]any    `json:"jsonData"`
	SecureJSONData map[string]string `json:"secureJsonData"`
	Version        int64             `json:"version"`
}

// dsJSON is what Grafana returns for a data source: secureJsonFields says
// which secrets are set, and their values never leave the server.
func dsJSON(o *org, d *datasource) map[string]any {
	fields := map[string]bool{}
	for k := range d.secure {
		fields[k] = true
	}
	jsonData := d.jsonData
	if jsonData == nil {
		jsonData = map[string]any{}
	}
	return map[string]any{
		"id": d.id, "uid": d.uid, "orgId": o.id, "name": d.name, "type": d.typ,
		"url": d.url, "access": d.access, "isDefault": d.isDefault, "jsonData": jsonData,
		"secureJsonFields": fields, "version": d.version, "readOnly": false,
		"basicAuth": false, "user": "", "database": "", "withCredentials": false,
	}
}

func (s *Server) listDataSources(w http.ResponseWriter, _ *http.Request, o *org) {
	list := make([]*datasource, 0, len(o.datasources))
	for _, d := range o.datasources {
		list = append(list, d)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].id < list[j].id })
	out := []map[string]any{}
	for _, d := range list {
		j := dsJSON(o, d)
		delete(j, "secureJsonFields")
		out = append(out, j)
	}
	reply(w, http.StatusOK, out)
}

func (s *Server) dataSourceByUID(w http.ResponseWriter, r *http.Request, o *org) {
	d, ok := o.datasources[r.PathValue("uid")]
	if !ok {
		reply(w, http.StatusNotFound, msg("Data source not found"))
		return
	}
	reply(w, http.StatusOK, dsJSON(o, d))
}

// nameTaken reports whether another data source of o has that name.
func nameTaken(o *org, name, exceptUID string) bool {
	for _, d := range o.datasources {
		if d.name == name && d.uid != exceptUID {
			return true
		}
	}
	return false
}

func (s *Server) addDataSource(w http.ResponseWriter, r *http.Request, o *org) {
	var c dsCommand
	if !decode(w, r, &c) {
		return
	}
	if c.Name == "" || c.Type == "" {
		reply(w, http.StatusBadRequest, msg("Name and type are required"))
		return
	}
	if nameTaken(o, c.Name, "") {
		reply(w, http.StatusConflict, msg("data source with the same name already exists"))
		return
	}
	if c.UID == "" {
		c.UID = "ds" + strconv.FormatInt(s.nextID, 10)
	}
	if _, taken := o.datasources[c.UID]; taken {
		reply(w, http.StatusConflict, msg("data source with the same uid already exists"))
		return
	}
	d := &datasource{id: s.id(), uid: c.UID, version: 1}
	apply(d, c)
	d.secure = map[string]string{}
	for k, v := range c.SecureJSONData {
		d.secure[k] = v
	}
	o.datasources[d.uid] = d
	reply(w, http.StatusOK, map[string]any{"datasource": dsJSON(o, d), "id": d.id,
		"message": "Datasource added", "name": d.name})
}

// apply copies the plain fields of c onto d.
func apply(d *datasource, c dsCommand) {
	d.name, d.typ, d.url, d.access, d.isDefault = c.Name, c.Type, c.URL, c.Access, c.IsDefault
	d.jsonData = c.JSONData
}

func (s *Server) updateDataSource(w http.ResponseWriter, r *http.Request, o *org) {
	d, ok := o.datasources[r.PathValue("uid")]
	if !ok {
		reply(w, http.StatusNotFound, msg("Data source not found"))
		return
	}
	var c dsCommand
	if !decode(w, r, &c) {
		return
	}
	if c.Version != 0 && c.Version != d.version {
		reply(w, http.StatusConflict, msg("Datasource has already been updated by someone "+
			"else. Please reload and try again"))
		return
	}
	if nameTaken(o, c.Name, d.uid) {
		reply(w, http.StatusConflict, msg("data source with the same name already exists"))
		return
	}
	apply(d, c)
	// Secrets not sent keep their stored values, as in Grafana.
	for k, v := range c.SecureJSONData {
		d.secure[k] = v
	}
	d.version++
	reply(w, http.StatusOK, map[string]any{"datasource": dsJSON(o, d), "id": d.id,
		"message": "Datasource updated", "name": d.name})
}

func (s *Server) deleteDataSource(w http.ResponseWriter, r *http.Request, o *org) {
	if _, ok := o.datasources[r.PathValue("uid")]; !ok {
		reply(w, http.StatusNotFound, msg("Data source not found"))
		return
	}
	delete(o.datasources, r.PathValue("uid"))
	reply(w, http.StatusOK, msg("Data source deleted"))
}
